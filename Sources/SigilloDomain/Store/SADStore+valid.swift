import Foundation

extension SADStore {
    func validSAD(_ sad: String, holderID: String, credentialID: String, now: Date) async throws -> SADRecord {
        guard let record = try await self.sad(idHash: Secrets.digest(sad)), record.holderID == holderID, record.credentialID == credentialID else {
            throw SigilloError(.invalidSAD, "the SAD is not valid for this credential")
        }
        guard record.expiresAt > now else {
            throw SigilloError(.expiredSAD, "the SAD has expired")
        }
        return record
    }
}
