import Mustache

/// The holder's web pages: Mustache templates (values HTML-escaped by `{{ }}`), one layout around each page.
/// Plain forms posting to the same origin, no JavaScript, no cookies: every action carries its own proof.
enum Templates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in Self.pages {
            // The templates are constants of this file: a parse error is a programming error caught by the tests.
            try! library.register(text, named: name)
        }
        return library
    }()

    static func render(_ name: String, _ values: [String: Any]) -> String {
        let body = self.library.render(values, withTemplate: name) ?? ""
        var page = values
        page["body"] = body
        return self.library.render(page, withTemplate: "layout") ?? body
    }

    static let pages: [String: String] = [
        "layout": """
            <!doctype html>
            <html lang="it">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{title}} · Sigillo</title>
            <style>
            body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f;line-height:1.45}
            h1{font-size:1.5rem} label{display:block;margin:.8rem 0 .2rem;font-weight:600}
            input[type=text],input[type=password],input[type=email],input[type=tel]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
            button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem}
            .error{background:#fde8e8;border:1px solid #e0a0a0;padding:.8rem;border-radius:.3rem}
            .warning{background:#fff4d6;border:1px solid #e6c35c;padding:.8rem;border-radius:.3rem}
            .ok{background:#e6f6e6;border:1px solid #9c9;padding:.8rem;border-radius:.3rem}
            .code{font-family:ui-monospace,monospace;font-size:1.6rem;letter-spacing:.1rem}
            .secret{font-family:ui-monospace,monospace;word-break:break-all}
            nav a{margin-right:1rem} small{color:#555}
            </style>
            </head>
            <body>
            <nav><a href="/">Sigillo</a><a href="/status">Stato / status</a><a href="/recovery">Credenziali smarrite / lost credentials</a><a href="/renew">Rinnovo / renewal</a></nav>
            <h1>{{title}}</h1>
            {{#error}}<p class="error" id="error" data-code="{{code}}">{{message}}</p>{{/error}}
            {{{body}}}
            </body>
            </html>
            """,
        "home": """
            <p>Firma remota qualificata: le chiavi restano nel dispositivo sicuro del servizio, ogni firma richiede password e OTP.</p>
            <p>Qualified remote signature: keys stay in the service's secure device; every signature needs password and OTP.</p>
            <ul>
            <li><a href="/status">Vedi lo stato della tua utenza / see your account's state</a></li>
            <li><a href="/recovery">Credenziali smarrite / lost credentials</a></li>
            <li><a href="/renew">Rinnova il certificato / renew the certificate</a></li>
            </ul>
            """,
        "message": """
            <p class="{{kind}}" id="result">{{text}}</p>
            {{#detail}}<p>{{detail}}</p>{{/detail}}
            {{#link}}<p><a href="{{href}}">{{label}}</a></p>{{/link}}
            """,
        "activate-device": """
            <p>Benvenuto/a {{name}}. Scegli il dispositivo che genererà i codici OTP per le tue firme.</p>
            <p><small>Welcome. Choose the device that will give you one-time passwords. The invitation is valid until {{expires}}.</small></p>
            <form method="post" action="/activate/device">
            <input type="hidden" name="code" value="{{code}}">
            <label><input type="radio" name="device" value="totp" checked> App sul telefono (Google Authenticator, FreeOTP…) / phone app</label>
            <label><input type="radio" name="device" value="hotp"> Token hardware con display / hardware display token</label>
            <label for="serial">Numero di serie del token / token serial</label><input type="text" id="serial" name="serial" autocomplete="off">
            <label for="seed">Seme del token, solo se ti è stato consegnato un foglio con il seme / token seed (hex), only if you were given a seed sheet</label><input type="text" id="seed" name="seed" autocomplete="off">
            <label><input type="radio" name="device" value="sms"> SMS al numero registrato (…{{mobileEnd}}) / SMS to the registered number</label>
            <button type="submit" id="choose">Continua / continue</button>
            </form>
            """,
        "device-proof": """
            {{#totp}}
            <p>Inquadra il codice QR con l'app del telefono, poi scrivi il codice a 6 cifre che mostra.</p>
            <p><small>Scan the QR code with your phone app, then type the code it shows.</small></p>
            <div id="qr">{{{qr}}}</div>
            <p><small>Non puoi inquadrarlo? Inserisci a mano questa chiave / can't scan? enter this key:</small><br><span class="secret" id="secret">{{secret}}</span></p>
            {{/totp}}
            {{#hotp}}<p>Premi il pulsante del token e scrivi il codice mostrato. / Press the token's button and type the code.</p>{{/hotp}}
            {{#sms}}<p>Ti abbiamo inviato un SMS al numero che termina con {{sentTo}}. / We sent an SMS to the number ending in {{sentTo}}.</p>{{/sms}}
            <form method="post" action="{{action}}">
            {{#hidden}}<input type="hidden" name="{{name}}" value="{{value}}">{{/hidden}}
            {{#chooseCredentials}}
            <label for="username">Nome utente / username</label><input type="text" id="username" name="username" autocomplete="username" required>
            <label for="password">Password (almeno 10 caratteri / at least 10 characters)</label><input type="password" id="password" name="password" autocomplete="new-password" required>
            <label for="password2">Ripeti la password / repeat the password</label><input type="password" id="password2" name="password2" autocomplete="new-password" required>
            {{/chooseCredentials}}
            <label for="otp">Codice OTP / one-time password</label><input type="text" id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" required>
            <button type="submit" id="confirm">Conferma / confirm</button>
            </form>
            """,
        "activated": """
            <p class="ok" id="result">Attivazione completata. Il tuo certificato è attivo fino al {{notAfter}}. / Activation complete.</p>
            <div class="warning">
            <p><strong>Il tuo codice utente (codice di emergenza) / your user code (emergency code):</strong></p>
            <p class="code" id="usercode">{{userCode}}</p>
            <p>Conservalo in un luogo sicuro, separato dal telefono o dal token: serve per sospendere o revocare la firma se
            perdi il dispositivo. <strong>Viene mostrato solo ora e non può essere recuperato.</strong></p>
            <p><small>Keep it somewhere safe, apart from your phone or token: it suspends or revokes your signature if the
            device is lost. It is shown only now and cannot be recovered.</small></p>
            </div>
            <p>Nome utente / username: <strong id="username">{{username}}</strong> · credenziale / credential <span id="credential">{{credentialID}}</span></p>
            """,
        "login": """
            {{#intro}}<p>{{intro}}</p>{{/intro}}
            <form method="post" action="{{action}}">
            {{#hidden}}<input type="hidden" name="{{name}}" value="{{value}}">{{/hidden}}
            {{#askUsername}}<label for="username">Nome utente / username</label><input type="text" id="username" name="username" autocomplete="username" required>{{/askUsername}}
            {{#askAccount}}<label for="account">Nome utente o email / username or email</label><input type="text" id="account" name="account" required>{{/askAccount}}
            {{#askEmail}}<label for="email">Email registrata / registered email</label><input type="email" id="email" name="email" required>{{/askEmail}}
            {{#askPassword}}<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>{{/askPassword}}
            {{#askNewPassword}}
            <label for="newPassword">Nuova password (almeno 10 caratteri) / new password</label><input type="password" id="newPassword" name="newPassword" autocomplete="new-password" required>
            <label for="newPassword2">Ripeti la nuova password / repeat it</label><input type="password" id="newPassword2" name="newPassword2" autocomplete="new-password" required>
            {{/askNewPassword}}
            {{#askUserCode}}<label for="userCode">Codice utente (di emergenza) / user code</label><input type="text" id="userCode" name="userCode" autocomplete="off" required>{{/askUserCode}}
            {{#askDevice}}
            <label><input type="radio" name="device" value="totp" checked> App sul telefono / phone app</label>
            <label><input type="radio" name="device" value="hotp"> Token hardware / hardware token</label>
            <label for="serial">Numero di serie / serial</label><input type="text" id="serial" name="serial" autocomplete="off">
            <label for="seed">Seme (esadecimale), solo se consegnato / seed (hex), only if given to you</label><input type="text" id="seed" name="seed" autocomplete="off">
            <label><input type="radio" name="device" value="sms"> SMS</label>
            {{/askDevice}}
            {{#askMobile}}<label for="mobile">Nuovo numero (+39…) / new number</label><input type="tel" id="mobile" name="mobile" required>{{/askMobile}}
            {{#askOTP}}<label for="otp">Codice OTP / one-time password</label><input type="text" id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" required>{{/askOTP}}
            {{#askNewNumberOTP}}<label for="newNumberOtp">Codice ricevuto sul nuovo numero / code sent to the new number</label><input type="text" id="newNumberOtp" name="newNumberOtp" inputmode="numeric" autocomplete="off" required>{{/askNewNumberOTP}}
            <button type="submit" id="submit">{{button}}</button>
            </form>
            """,
        "status": """
            <p>Stato / state: <strong id="state" data-state="{{state}}">{{stateLabel}}</strong></p>
            <table>
            <tr><th>Credenziale</th><th>Stato</th><th>Seriale</th><th>Valido fino al / valid until</th></tr>
            {{#credentials}}<tr><td>{{id}}</td><td>{{status}}</td><td>{{serial}}</td><td>{{notAfter}}</td></tr>{{/credentials}}
            </table>
            {{#expiring}}<p class="warning">Il certificato è in scadenza: <a href="/renew">rinnovalo ora</a>. / Your certificate expires soon: renew it.</p>{{/expiring}}
            """,
        "recovery": """
            <ul>
            <li><a href="/recovery/username" id="lost-username">Ho dimenticato il nome utente / I forgot my username</a></li>
            <li><a href="/recovery/password" id="lost-password">Ho dimenticato la password / I forgot my password</a></li>
            <li><a href="/recovery/device" id="lost-device">Ho perso o rotto il dispositivo OTP / I lost or broke my OTP device</a></li>
            <li><a href="/recovery/usercode" id="lost-usercode">Ho perso il codice utente / I lost my user code</a></li>
            <li><a href="/recovery/mobile" id="change-mobile">Ho cambiato numero di cellulare / I changed my mobile number</a></li>
            </ul>
            <p>Hai perso il telefono o il token e temi un uso illecito? Sospendi subito la firma con il codice utente
            (<code>POST /selfservice/v1/suspend</code>) o chiama l'assistenza. / Lost your phone or token? Suspend your signature now with the user code.</p>
            """,
        "usercode-lost": """
            <div class="warning" id="no-recovery">
            <p><strong>Il codice utente non può essere recuperato.</strong> Non è conservato in chiaro da nessuna parte.</p>
            <p>Puoi continuare a firmare con password e OTP. Se vuoi un nuovo codice, o temi che qualcuno lo conosca,
            revoca il certificato (qui sotto con password e OTP, oppure chiedi all'operatore) e fai un nuovo ordine.</p>
            <p><small>The user code cannot be recovered. You can keep signing with password and OTP. For a new code,
            revoke the certificate (below, with password and OTP, or through an operator) and place a new order.</small></p>
            </div>
            {{> login}}
            """,
    ]
}
