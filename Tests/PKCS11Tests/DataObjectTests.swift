import Foundation
import PKCS11
import SigilloTestSupport
import Testing

@Suite("Token: private data objects")
struct DataObjectTests {
    @Test("a data object is stored, replaced (never two, never none), read back and destroyed; invisible without login")
    func storeReplaceDestroy() async throws {
        let fixture = try TestToken()
        let token = fixture.token
        #expect(try await token.dataObjectValues(label: "anchor").isEmpty)
        try await token.storeDataObject(label: "anchor", value: Array("first".utf8))
        #expect(try await token.dataObjectValues(label: "anchor") == [Array("first".utf8)])
        try await token.storeDataObject(label: "anchor", value: Array("second".utf8))
        #expect(try await token.dataObjectValues(label: "anchor") == [Array("second".utf8)])
        try await token.storeDataObject(label: "other", value: [1, 2, 3])
        #expect(try await token.dataObjectValues(label: "anchor") == [Array("second".utf8)])

        // Another process without the PIN does not even see it; with the PIN it does (so the check can fail).
        let environment = try fixture.isolatedEnvironment()
        let listing = ["--module", TestHSM.modulePath, "--token-label", fixture.label, "--list-objects", "--type", "data"]
        let anonymous = try await runOffPool("pkcs11-tool", listing, environment: environment)
        #expect(!anonymous.output.contains("anchor"), "\(anonymous.output)")
        let loggedIn = try await runOffPool("pkcs11-tool", listing + ["--login", "--pin", fixture.userPIN], environment: environment)
        #expect(loggedIn.status == 0 && loggedIn.output.contains("anchor"), "\(loggedIn.output)")

        #expect(try await token.destroyDataObjects(label: "anchor") == 1)
        #expect(try await token.dataObjectValues(label: "anchor").isEmpty)
        #expect(try await token.dataObjectValues(label: "other") == [[1, 2, 3]])
    }
}
