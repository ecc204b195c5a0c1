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
    /// Stores the Argon2id hash of the holder's user (emergency) code, shown to them once, and clears its lock.
    func setUserCodeHash(holderID: String, hash: String) async throws
    /// The stored user code hash (its lock is in `AttemptStore`).
    func userCode(holderID: String) async throws -> String?
    /// Moves a holder to `to` if it is in one of `from` (compare-and-set); false otherwise.
    func transitionHolder(id: String, from: Set<HolderState>, to: HolderState) async throws -> Bool
    /// The holder who is not closed (revoked) with this email or mobile number: a closed holder's contact details may
    /// belong to a new order for the same person, and lookups by them find only the open one.
    func holder(email: String) async throws -> Holder?
    func holder(mobile: String) async throws -> Holder?
}
