internal import CPKCS11

/// Small private data objects (`CKO_DATA`) kept in the token: state that must not live only where an attacker with
/// access to the server's files can rewrite it (the audit log's latest checkpoint). Readable and writable only after
/// login, like the keys.
extension Token {
    /// The values of every private data object labelled `label` (usually one; more after a crash between the two
    /// steps of `storeDataObject`, or when several nodes wrote at once).
    public func dataObjectValues(label: String) async throws -> [[UInt8]] {
        try await self.withSession(retry: true) { session throws(PKCS11Error) in
            try session.findObjects(Self.dataTemplate(label: label)).map { object throws(PKCS11Error) in try session.attribute(.value, of: object) }
        }
    }

    /// Stores `value` as the data object labelled `label`: a new object is created first, then the older ones with that
    /// label are destroyed, so there is never a moment without one.
    public func storeDataObject(label: String, value: [UInt8]) async throws {
        try await self.withSession { session throws(PKCS11Error) in
            try self.objectWrites.withLock { _ throws(PKCS11Error) in
                let older = try session.findObjects(Self.dataTemplate(label: label))
                _ = try session.createObject(Self.dataTemplate(label: label) + [.bool(.token, true), .bytes(.value, value)])
                for object in older { try session.destroy(object) }
            }
        }
    }

    /// Destroys every data object labelled `label`; returns how many there were.
    @discardableResult
    public func destroyDataObjects(label: String) async throws -> Int {
        try await self.withSession { session throws(PKCS11Error) in
            try self.objectWrites.withLock { _ throws(PKCS11Error) in
                let objects = try session.findObjects(Self.dataTemplate(label: label))
                for object in objects { try session.destroy(object) }
                return objects.count
            }
        }
    }

    private static func dataTemplate(label: String) -> [Attribute] {
        [.objectClass(.data), .bool(.private, true), .bytes(.label, Array(label.utf8)),
         .bytes(AttributeType(rawValue: UInt(CKA_APPLICATION)), Array("sigillo".utf8))]
    }
}

extension Session {
    /// Creates an object from `template` (`C_CreateObject`).
    func createObject(_ template: [Attribute]) throws(PKCS11Error) -> ObjectHandle {
        let create = try self.module.function(\.C_CreateObject, "C_CreateObject")
        var object: CK_OBJECT_HANDLE = 0
        try Attribute.withTemplate(template) { pointer, count throws(PKCS11Error) in
            try check(create(self.handle, pointer, count, &object), "C_CreateObject")
        }
        return ObjectHandle(rawValue: UInt(object))
    }
}
