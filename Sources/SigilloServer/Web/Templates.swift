import Foundation
import Mustache

/// The holder's web pages: Mustache templates (values HTML-escaped by `{{ }}`), one layout around each page.
/// Plain forms posting to the same origin, no JavaScript, no cookies: every action carries its own proof.
///
/// The templates are the resource files `Sources/SigilloServer/Templates/*.mustache`, in the module's bundle
/// (`sigillo_SigilloServer.resources` beside the executable).
enum Templates {
    /// Every page, parsed once; the error when a template is missing or does not parse.
    static let loaded: Result<MustacheLibrary, TemplateError> = Result {
        guard let directory = Bundle.module.url(forResource: "Templates", withExtension: nil) else {
            throw TemplateError("the Templates folder is missing from the SigilloServer resources bundle")
        }
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil).filter { $0.pathExtension == "mustache" }
        var library = MustacheLibrary()
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            do {
                try library.register(text, named: file.deletingPathExtension().lastPathComponent)
            } catch {
                throw TemplateError("template \(file.lastPathComponent) does not parse: \(error)")
            }
        }
        guard library.getTemplate(named: "layout") != nil else { throw TemplateError("the layout template is missing") }
        return library
    }.mapError { $0 as? TemplateError ?? TemplateError("the templates cannot be read: \($0)") }

    /// Fails when the templates cannot be loaded (checked when the application is built, so a broken installation
    /// does not start instead of serving empty pages).
    static func check() throws {
        _ = try self.loaded.get()
    }

    static func render(_ name: String, _ values: [String: Any]) -> String {
        guard case .success(let library) = self.loaded else { return "" }
        let body = library.render(values, withTemplate: name) ?? ""
        var page = values
        page["body"] = body
        return library.render(page, withTemplate: "layout") ?? body
    }
}

/// Why the web page templates cannot be used.
struct TemplateError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
