import Foundation
import SigilloCMS
import X509

/// Fetches the revocation data of a signer's certificate for CAdES-B-LT (ETSI EN 319 122-1 §5.5): the CRL from its
/// CRL distribution point and an OCSP response from its OCSP responder (RFC 6960), both over plain HTTP as CAs publish
/// them. Each object is checked before it is embedded: signed by the certificate's issuer (or, for OCSP, by a
/// responder the issuer delegated to), not past its `nextUpdate`, and saying the certificate is not revoked; a revoked
/// certificate is an error, never a file.
///
/// ```swift
/// let fetcher = RevocationFetcher(http: publication)
/// let validation = try await fetcher.validationData(signer: signer, issuer: caCertificate)
/// let p7s = try prepared.finish(signature: signature, timeStampToken: token, validation: validation)
/// ```
public struct RevocationFetcher: Sendable {
    let http: PublicationClient

    public init(http: PublicationClient) {
        self.http = http
    }

    /// The issuer of `signer` among `certificates` (by name, and its key verifies the signer's signature).
    ///
    /// - Throws: `SignatureLevelError.revocationDataUnavailable` when none is.
    public static func issuer(of signer: SignerCertificate, in certificates: [[UInt8]]) throws -> SignerCertificate {
        let leaf = try? Certificate(derEncoded: signer.der)
        for der in certificates where der != signer.der {
            guard let candidate = try? SignerCertificate(der: der), candidate.subjectDER == signer.issuerDER else { continue }
            if let leaf, let issuer = try? Certificate(derEncoded: der), issuer.publicKey.isValidSignature(leaf.signature, for: leaf) {
                return candidate
            }
        }
        throw SignatureLevelError(.revocationDataUnavailable, "the certificate chain from the service has no issuer of the signer's certificate: cannot check its revocation")
    }

    /// The CRL and the OCSP response for `signer`, checked, as `ValidationData` (plus a delegated OCSP responder's
    /// certificate when the response was signed by one).
    ///
    /// - Parameters:
    ///   - issuer: the CA certificate that issued `signer`.
    ///   - now: what "not stale" is judged against.
    /// - Throws: `SignatureLevelError.certificateRevoked` when either source says the certificate is revoked (or OCSP
    ///   does not know it); `.revocationDataUnavailable` when a source fails or the certificate names none.
    public func validationData(signer: SignerCertificate, issuer: SignerCertificate, now: Date = Date()) async throws -> ValidationData {
        guard !signer.crlURLs.isEmpty || !signer.ocspURLs.isEmpty else {
            throw SignatureLevelError(.revocationDataUnavailable, "the signer's certificate names no http CRL distribution point and no OCSP responder: nothing to embed for B-LT")
        }
        var validation = ValidationData()
        if let url = signer.crlURLs.first {
            let crl = try await self.crl(from: url, signer: signer, issuer: issuer, now: now)
            validation.revocation.append(.crl(crl.der))
        }
        if let url = signer.ocspURLs.first {
            let (reply, responder) = try await self.ocsp(from: url, signer: signer, issuer: issuer, now: now)
            validation.revocation.append(.ocspResponse(reply.der))
            if let responder { validation.certificates.append(responder) }
        }
        return validation
    }

    /// `GET` of the CRL at `url`; checked: issued by `issuer`, signed with its key, current, not listing `signer`.
    ///
    /// - Throws: `SignatureLevelError` as `validationData` does.
    public func crl(from url: String, signer: SignerCertificate, issuer: SignerCertificate, now: Date = Date()) async throws -> CRLInfo {
        let issuer = try Self.parse(issuer)
        let crl: CRLInfo
        do {
            let answer = try await self.http.get(url, accept: "application/pkix-crl")
            guard answer.status == 200 else { throw CMSError("HTTP \(answer.status)") }
            crl = try CRLInfo(der: answer.body)
        } catch {
            throw SignatureLevelError(.revocationDataUnavailable, "CRL from \(url): \(error)")
        }
        guard crl.issuerDER == signer.issuerDER else {
            throw SignatureLevelError(.revocationDataUnavailable, "CRL from \(url) is not the signer's issuer's")
        }
        guard Self.verify(crl.signature, over: crl.tbsCertList, algorithmOID: crl.signatureAlgorithmOID, key: issuer.publicKey) else {
            throw SignatureLevelError(.revocationDataUnavailable, "CRL from \(url): its signature does not verify with the issuer's key")
        }
        if let next = crl.nextUpdate, next < now {
            throw SignatureLevelError(.revocationDataUnavailable, "CRL from \(url) is stale (nextUpdate \(next))")
        }
        if let date = crl.revoked[signer.serialNumber] {
            throw SignatureLevelError(.certificateRevoked, "the signer's certificate is revoked (since \(date), CRL from \(url)): no B-LT signature written")
        }
        return crl
    }

    /// `POST` of an OCSP request to `url`; checked: successful, signed by the issuer or a responder it delegated to
    /// (`id-kp-OCSPSigning`), about this certificate, `good`, current.
    ///
    /// - Returns: the response and, when a delegated responder signed it, that responder's certificate (DER).
    /// - Throws: `SignatureLevelError` as `validationData` does.
    public func ocsp(from url: String, signer: SignerCertificate, issuer: SignerCertificate, now: Date = Date()) async throws
        -> (reply: OCSPReply, responder: [UInt8]?)
    {
        let issuerCertificate = try Self.parse(issuer)
        let query: OCSPQuery
        let reply: OCSPReply
        do {
            query = try OCSPQuery(certificate: signer, issuer: issuer)
            let answer = try await self.http.post(url, body: try query.derEncoded(), contentType: "application/ocsp-request", accept: "application/ocsp-response")
            guard answer.status == 200 else { throw CMSError("HTTP \(answer.status)") }
            reply = try OCSPReply(der: answer.body)
        } catch {
            throw SignatureLevelError(.revocationDataUnavailable, "OCSP from \(url): \(error)")
        }
        var responder: [UInt8]? = nil
        if !Self.verify(reply.signature, over: reply.tbsResponseData, algorithmOID: reply.signatureAlgorithmOID, key: issuerCertificate.publicKey) {
            // A delegated responder (RFC 6960 §4.2.2.2): a certificate the issuer signed, with id-kp-OCSPSigning.
            let delegated = reply.certificates.first { der in
                guard let certificate = try? Certificate(derEncoded: der),
                    issuerCertificate.publicKey.isValidSignature(certificate.signature, for: certificate),
                    (try? certificate.extensions.extendedKeyUsage)??.contains(.ocspSigning) == true
                else { return false }
                return Self.verify(reply.signature, over: reply.tbsResponseData, algorithmOID: reply.signatureAlgorithmOID, key: certificate.publicKey)
            }
            guard let delegated else {
                throw SignatureLevelError(.revocationDataUnavailable, "OCSP from \(url): the response is signed neither by the issuer nor by a responder it delegated to")
            }
            responder = delegated
        }
        let single: OCSPReply.SingleResponse
        do {
            single = try reply.response(for: query)
        } catch {
            throw SignatureLevelError(.revocationDataUnavailable, "OCSP from \(url): \(error)")
        }
        switch single.status {
        case .good:
            break
        case .revoked(let date, let reason):
            throw SignatureLevelError(.certificateRevoked,
                                      "the signer's certificate is revoked (since \(date)\(reason.map { ", reason \($0)" } ?? ""), OCSP from \(url)): no B-LT signature written")
        case .unknown:
            throw SignatureLevelError(.certificateRevoked, "the OCSP responder \(url) does not know the signer's certificate (status unknown): no B-LT signature written")
        }
        if let next = single.nextUpdate, next < now {
            throw SignatureLevelError(.revocationDataUnavailable, "OCSP from \(url): the response is stale (nextUpdate \(next))")
        }
        return (reply, responder)
    }

    static func parse(_ issuer: SignerCertificate) throws -> Certificate {
        do {
            return try Certificate(derEncoded: issuer.der)
        } catch {
            throw SignatureLevelError(.revocationDataUnavailable, "the issuer certificate does not parse: \(error)")
        }
    }

    /// Whether `signature` over `bytes` verifies with `key` for the algorithm `algorithmOID` (ECDSA or RSA PKCS#1 v1.5
    /// with SHA-256/384/512).
    static func verify(_ signature: [UInt8], over bytes: [UInt8], algorithmOID: String, key: Certificate.PublicKey) -> Bool {
        let algorithms: [String: Certificate.SignatureAlgorithm] = [
            "1.2.840.10045.4.3.2": .ecdsaWithSHA256, "1.2.840.10045.4.3.3": .ecdsaWithSHA384, "1.2.840.10045.4.3.4": .ecdsaWithSHA512,
            "1.2.840.113549.1.1.11": .sha256WithRSAEncryption, "1.2.840.113549.1.1.12": .sha384WithRSAEncryption,
            "1.2.840.113549.1.1.13": .sha512WithRSAEncryption,
        ]
        guard let algorithm = algorithms[algorithmOID] else { return false }
        return key.isValidSignature(signature, for: bytes, signatureAlgorithm: algorithm)
    }
}
