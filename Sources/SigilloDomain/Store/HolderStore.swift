import Foundation

/// Holders: identity, state, contact details and the user (emergency) code.
public protocol HolderStore: Sendable {
    /// - Throws: `SigilloError.conflict` naming the field when email, mobile, fiscal code or username is taken.
    func createHolder(_ holder: Holder) async throws
    func holder(id: String) async throws -> Holder?
    func holder(username: String) async throws -> Holder?
    /// Every holder, oldest first.
    func holders() async throws -> [Holder]
    func setHolderState(id: String, state: HolderState) async throws
    /// - Throws: `notFound`; `conflict` when the number belongs to another holder.
    func setHolderMobile(id: String, mobile: String) async throws
    /// Stores the Argon2id hash of the holder's user (emergency) code, shown to them once.
    func setUserCodeHash(holderID: String, hash: String) async throws
    /// The stored user code hash and the consecutive wrong attempts.
    func userCode(holderID: String) async throws -> (hash: String, failures: Int)?
    /// Counts a wrong user code (returns the new count), or clears the count after a right one.
    func recordUserCodeAttempt(holderID: String, success: Bool) async throws -> Int
    /// Moves a holder to `to` if it is in one of `from` (compare-and-set); false otherwise.
    func transitionHolder(id: String, from: Set<HolderState>, to: HolderState) async throws -> Bool
    func holder(email: String) async throws -> Holder?
    func holder(mobile: String) async throws -> Holder?
}
