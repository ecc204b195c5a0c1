/// A PKCS#11 slot identifier (`CK_SLOT_ID`), as the module numbers its slots.
///
/// Slot numbers are the module's own and may change when a token is removed and comes back: find a token by
/// its label (`PKCS11Module.slot(forTokenLabel:)`), never by a remembered number.
public struct SlotID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The module's number for the slot.
    public let rawValue: UInt

    /// The slot the module numbers `rawValue`.
    public init(rawValue: UInt) {
        self.rawValue = rawValue
    }

    /// The slot number in decimal, as `p11tool` and `softhsm2-util` print it.
    public var description: String { String(self.rawValue) }
}
