import PKCS11
import Testing

/// The Swift types that stand for PKCS#11's C values carry the specification's numbers (PKCS#11 v2.40 §§ 3, 4).
@Suite("PKCS#11 value types")
struct ValueTypeTests {
    @Test func attributeTypes() {
        let expected: [(AttributeType, UInt)] = [
            (.class, 0x000), (.token, 0x001), (.private, 0x002), (.label, 0x003), (.value, 0x011), (.keyType, 0x100),
            (.id, 0x102), (.sensitive, 0x103), (.encrypt, 0x104), (.decrypt, 0x105), (.wrap, 0x106), (.unwrap, 0x107),
            (.sign, 0x108), (.verify, 0x10A), (.derive, 0x10C), (.modulus, 0x120), (.modulusBits, 0x121),
            (.publicExponent, 0x122), (.privateExponent, 0x123), (.valueLength, 0x161), (.extractable, 0x162),
            (.ecParams, 0x180), (.ecPoint, 0x181),
        ]
        for (type, value) in expected {
            #expect(type.rawValue == value)
        }
    }

    @Test func objectClasses() {
        #expect([ObjectClass.data, .certificate, .publicKey, .privateKey, .secretKey].map(\.rawValue) == [0, 1, 2, 3, 4])
        let attribute = Attribute.objectClass(.secretKey)
        #expect(attribute.type == .class)
        #expect(attribute.value == withUnsafeBytes(of: UInt(4)) { Array($0) })
        #expect(Attribute.bool(.sensitive, true).value == [1])
    }

    @Test func returnValues() {
        #expect(ReturnValue.ok.rawValue == 0)
        #expect(ReturnValue.attributeSensitive.rawValue == 0x11)
        #expect(ReturnValue.attributeSensitive.description == "CKR_ATTRIBUTE_SENSITIVE")
        #expect(ReturnValue(rawValue: 0xA0).name == "CKR_PIN_INCORRECT")
        #expect(ReturnValue(rawValue: 0x8000_0001).name == "CKR_0x80000001")
        let error = PKCS11Error(.moduleError, function: "C_Sign", rv: .keyHandleInvalid, detail: "stale")
        #expect(error.rvName == "CKR_KEY_HANDLE_INVALID")
        #expect(error.description.contains("(C_Sign: CKR_KEY_HANDLE_INVALID)"))
    }

    @Test func slotAndObjectHandlesPrintTheirNumbers() {
        #expect("\(SlotID(rawValue: 1_234_567))" == "1234567")
        #expect("\(ObjectHandle(rawValue: 42))" == "42")
    }
}
