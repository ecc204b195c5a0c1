import Foundation

/// State of the certificate authority shared by every node.
public protocol PKIStateStore: Sendable {
    /// Hands out the next CRL number (1, 2, 3…), never the same twice, even across nodes and restarts.
    func nextCRLNumber() async throws -> Int64
}
