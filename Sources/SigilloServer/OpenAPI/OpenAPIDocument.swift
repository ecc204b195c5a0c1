import Foundation
import Hummingbird
import NIOCore

/// An OpenAPI 3.1 document built in Swift, next to the routes it describes: one per listener (`OpenAPI.publicListener`,
/// `.adminListener`, `.publicationListener`), served as `GET /openapi.json` by `OpenAPIController`.
///
/// A route is added with `add(_:_:…)` in OpenAPI form (`/admin/v1/holders/{id}`; its path parameters are derived from
/// the braces); schemas shared by several operations go in `components/schemas` with `schema(_:_:)` and are used with
/// `Schema.ref`. `OpenAPITests` compares the paths with the live router's routes in both directions and checks what the
/// live server answers against the documented statuses and schemas.
public struct OpenAPIDocument: Sendable {
    /// How an operation authenticates (the security schemes every document declares).
    public enum Security: Sendable {
        /// No credentials (rate-limited per address and account where the README says so).
        case anonymous
        /// HTTP Basic username and password (CSC `auth/login`).
        case basic
        /// A CSC access token, `Authorization: Bearer …`.
        case bearer
        /// The operator's client certificate, issued by the admin CA (mutual TLS, checked in the handshake).
        case operatorCertificate

        var requirement: JSONValue {
            switch self {
            case .anonymous: return []
            case .basic: return [["basicAuth": []]]
            case .bearer: return [["bearerAuth": []]]
            case .operatorCertificate: return [["operatorCertificate": []]]
            }
        }
    }

    let title: String
    let summary: String
    var paths: [String: [String: JSONValue]] = [:]
    var schemas: [String: JSONValue] = [:]
    var tags: [String: String] = [:]

    public init(title: String, summary: String) {
        self.title = title
        self.summary = summary
        self.schema("Error", Schema.object([
            "error": Schema.string("A stable code: `invalid_request`, `invalid_token`, `not_found`, `payload_too_large`, `too_many_requests`, …"),
            "error_description": Schema.string("What went wrong, for people"),
        ], required: ["error", "error_description"], description: "Every JSON error (the CSC error shape)"))
    }

    /// Declares the tag `name` (a group of operations in viewers).
    public mutating func tag(_ name: String, _ description: String) {
        self.tags[name] = description
    }

    /// Adds the schema `name` to `components/schemas`.
    public mutating func schema(_ name: String, _ schema: JSONValue) {
        self.schemas[name] = schema
    }

    /// Adds the operation `method path`.
    ///
    /// - Parameters:
    ///   - path: in OpenAPI form; each `{name}` becomes a required string path parameter.
    ///   - query: optional string query parameters, name and description.
    ///   - request: the request body (`Body.json(…)`, `.form(…)`, `.bytes(…)`), nil for none.
    ///   - responses: by status, made with `Reply`.
    public mutating func add(_ method: String, _ path: String, tag: String, summary: String, description: String? = nil, security: Security = .anonymous,
                             query: [(String, String)] = [], request: JSONValue? = nil, responses: [Int: JSONValue]) {
        var operation: [String: JSONValue] = [
            "operationId": .string(Self.operationID(method, path)),
            "summary": .string(summary),
            "tags": [.string(tag)],
            "security": security.requirement,
            "responses": .object(Dictionary(uniqueKeysWithValues: responses.map { (String($0.key), $0.value) })),
        ]
        if let description { operation["description"] = .string(description) }
        var parameters: [JSONValue] = Self.pathParameters(path).map {
            ["name": .string($0), "in": "path", "required": true, "schema": Schema.string]
        }
        parameters += query.map { ["name": .string($0.0), "in": "query", "required": false, "description": .string($0.1), "schema": Schema.string] }
        if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
        if let request { operation["requestBody"] = request }
        precondition(self.paths[path]?[method.lowercased()] == nil, "\(method) \(path) documented twice")
        self.paths[path, default: [:]][method.lowercased()] = .object(operation)
    }

    /// Every documented operation, `METHOD /path` (sorted).
    public var operations: [String] {
        self.paths.flatMap { path, methods in methods.keys.map { "\($0.uppercased()) \(path)" } }.sorted()
    }

    /// The document.
    public var json: JSONValue {
        [
            "openapi": "3.1.0",
            "info": ["title": .string(self.title), "version": "1", "description": .string(self.summary)],
            "tags": .array(self.tags.sorted { $0.key < $1.key }.map { ["name": .string($0.key), "description": .string($0.value)] }),
            "paths": .object(self.paths.mapValues { .object($0) }),
            "components": [
                "schemas": .object(self.schemas),
                "securitySchemes": [
                    "basicAuth": ["type": "http", "scheme": "basic", "description": "The holder's username and password"],
                    "bearerAuth": ["type": "http", "scheme": "bearer", "description": "An access token from `auth/login`"],
                    "operatorCertificate": ["type": "mutualTLS", "description": "A client certificate issued by the admin CA (`adminCA`), required in the TLS handshake"],
                ],
            ],
        ]
    }

    static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").compactMap { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? String(segment.dropFirst().dropLast()) : nil
        }
    }

    /// `post /csc/v1/credentials/info` → `post_csc_v1_credentials_info`.
    static func operationID(_ method: String, _ path: String) -> String {
        let words = path.split { !$0.isLetter && !$0.isNumber }.map(String.init)
        return ([method.lowercased()] + (words.isEmpty ? ["root"] : words)).joined(separator: "_")
    }
}

/// JSON Schema (2020-12) building blocks.
public enum Schema {
    public static let string: JSONValue = ["type": "string"]
    public static let integer: JSONValue = ["type": "integer"]
    public static let boolean: JSONValue = ["type": "boolean"]

    public static func string(_ description: String? = nil, format: String? = nil, values: [String]? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "string"]
        if let description { schema["description"] = .string(description) }
        if let format { schema["format"] = .string(format) }
        if let values { schema["enum"] = .array(values.map(JSONValue.string)) }
        return .object(schema)
    }

    public static func integer(_ description: String) -> JSONValue {
        ["type": "integer", "description": .string(description)]
    }

    public static func array(_ items: JSONValue, description: String? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "array", "items": items]
        if let description { schema["description"] = .string(description) }
        return .object(schema)
    }

    /// `#/components/schemas/<name>`.
    public static func ref(_ name: String) -> JSONValue {
        ["$ref": .string("#/components/schemas/\(name)")]
    }

    /// An object with `properties`, `required` ones among them.
    ///
    /// - Parameter closed: no other member (what the server answers: a new member must be documented, the tests see
    ///   it); request bodies are open (the server ignores members it does not know).
    public static func object(_ properties: [String: JSONValue], required: [String] = [], closed: Bool = true, description: String? = nil) -> JSONValue {
        precondition(Set(required).isSubset(of: properties.keys), "required members must be properties: \(required)")
        var schema: [String: JSONValue] = ["type": "object", "properties": .object(properties)]
        if !required.isEmpty { schema["required"] = .array(required.map(JSONValue.string)) }
        if closed { schema["additionalProperties"] = false }
        if let description { schema["description"] = .string(description) }
        return .object(schema)
    }
}

/// Request bodies.
public enum Body {
    /// A JSON body with `schema`.
    public static func json(_ schema: JSONValue, required: Bool = true) -> JSONValue {
        ["required": .bool(required), "content": ["application/json": ["schema": schema]]]
    }

    /// An HTML form's `application/x-www-form-urlencoded` body with these string fields (all optional: a missing field
    /// is answered with the page and its error).
    public static func form(_ fields: [String]) -> JSONValue {
        let properties = Dictionary(uniqueKeysWithValues: fields.map { ($0, Schema.string) })
        return ["required": true, "content": ["application/x-www-form-urlencoded": ["schema": Schema.object(properties, closed: false)]]]
    }

    /// A body of `contentType` (DER, CSV, …).
    public static func bytes(_ contentType: String, _ description: String) -> JSONValue {
        ["required": true, "description": .string(description), "content": [contentType: ["schema": ["type": "string", "contentMediaType": .string(contentType)]]]]
    }
}

/// Responses.
public enum Reply {
    /// A JSON answer with `schema`.
    public static func json(_ description: String, _ schema: JSONValue) -> JSONValue {
        ["description": .string(description), "content": ["application/json": ["schema": schema]]]
    }

    /// A JSON error (`#/components/schemas/Error`).
    public static func error(_ description: String) -> JSONValue {
        self.json(description, Schema.ref("Error"))
    }

    /// An answer of `contentType` that is not JSON (DER, PEM, NDJSON, Prometheus text).
    public static func bytes(_ description: String, _ contentType: String) -> JSONValue {
        ["description": .string(description), "content": [contentType: ["schema": ["type": "string", "contentMediaType": .string(contentType)]]]]
    }

    /// An HTML page.
    public static func html(_ description: String) -> JSONValue {
        self.bytes(description, "text/html")
    }

    /// No body.
    public static func empty(_ description: String) -> JSONValue {
        ["description": .string(description)]
    }
}

/// Serves a document as `GET /openapi.json` (encoded once, when the router is built).
public struct OpenAPIController<Context: RequestContext>: Sendable {
    let body: ByteBuffer

    public init(_ document: OpenAPIDocument) {
        self.body = ByteBuffer(data: document.json.encoded())
    }

    public func addRoutes(to router: Router<Context>) {
        router.get("/openapi.json") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            headers[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: self.body))
        }
    }
}
