import Foundation
import Logging
import PostgresNIO
import SigilloDomain
import Synchronization

/// Connections: the probe outside the pool, leasing from the pool with a bounded wait, and PostgreSQL's errors as the
/// domain's.
extension PostgresStore {
    /// What one connection outside the pool found at `settings`' address.
    enum ProbeOutcome {
        case connected
        /// The server answered, and refused (a wrong password, no such database, too many clients): reachable.
        case refused(SigilloError)
        /// No server answered.
        case unreachable(SigilloError)
    }

    /// Opens one connection outside the pool, runs `body` on it and closes it; a connection that cannot be made
    /// throws the error `probeOutcome` names.
    static func withProbeConnection<T>(_ settings: PostgresSettings, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: try settings.connectionConfiguration, id: 0, logger: Self.quiet)
        } catch {
            switch Self.outcome(of: error, settings: settings) {
            case .connected: throw error
            case .refused(let refusal), .unreachable(let refusal): throw refusal
            }
        }
        do {
            let value = try await body(connection)
            try? await connection.close()
            return value
        } catch let error as PSQLError {
            try? await connection.close()
            throw Self.domainError(error)
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// One connection made and closed: so that a wrong password, a missing database or an unreachable server is said at
    /// start in those words (the pool itself only keeps retrying), and so that a long wait tells an outage from a busy pool.
    static func probeOutcome(_ settings: PostgresSettings) async -> ProbeOutcome {
        do {
            try await self.withProbeConnection(settings) { _ in }
            return .connected
        } catch {
            return self.outcome(of: error, settings: settings)
        }
    }

    /// `probeOutcome` at start: throws what it found unless connected.
    static func probe(_ settings: PostgresSettings) async throws {
        switch await self.probeOutcome(settings) {
        case .connected: return
        case .refused(let error), .unreachable(let error): throw error
        }
    }

    /// What a failed connection attempt means.
    private static func outcome(of error: any Error, settings: PostgresSettings) -> ProbeOutcome {
        if let refusal = error as? SigilloError { return refusal.code == .databaseUnavailable ? .unreachable(refusal) : .refused(refusal) }
        guard let error = error as? PSQLError else {
            return .unreachable(SigilloError(.databaseUnavailable, "PostgreSQL at \(settings.redacted) cannot be reached: \(error)"))
        }
        let state = error.serverInfo?[.sqlState] ?? ""
        let message = error.serverInfo?[.message] ?? "\(error.code)"
        switch state {
        case "28P01", "28000":
            return .refused(SigilloError(.internalError, "PostgreSQL refused user \(settings.username) at \(settings.redacted): \(message)"))
        case "3D000":
            return .refused(SigilloError(.internalError, "PostgreSQL has no database \(settings.database) at \(settings.redacted): create it first"))
        case "":
            return .unreachable(SigilloError(.databaseUnavailable, "PostgreSQL at \(settings.redacted) cannot be reached: \(error.code)"))
        default:
            return .refused(SigilloError(.databaseUnavailable, "PostgreSQL at \(settings.redacted) refused the connection: \(message)"))
        }
    }

    /// Leases a connection for `body`, waiting at most `connectionWait` for one; maps PostgreSQL's errors to the
    /// domain's (`conflict` for a unique violation, `databaseUnavailable` for a lost or unreachable server).
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            let value = try await self.leasing(body)
            self.reachable.value.store(true, ordering: .relaxed)
            return value
        } catch {
            let mapped: any Error
            switch error {
            case let error as PSQLError: mapped = Self.domainError(error)
            case let error as SigilloError: mapped = error
            case is CancellationError: mapped = error
            default: mapped = SigilloError(.databaseUnavailable, "the database cannot be reached now; try again shortly")
            }
            if (mapped as? SigilloError)?.code == .databaseUnavailable {
                // What PostgreSQL or the pool said is in the log; the caller hears "unavailable".
                self.logger.warning("database unavailable", metadata: ["error": "\(String(reflecting: error))"])
                self.reachable.value.store(false, ordering: .relaxed)
            }
            throw mapped
        }
    }

    /// `body` on a leased connection. While the database answers, a call waits for a connection as long as the pool
    /// needs (up to `busyWait`: a burst of requests queues, it is not an outage); once a call found it unreachable, calls
    /// that get no connection within `connectionWait` fail. The caller is answered as soon as that is decided, whatever
    /// the pool does with the lease it asked for (a lease granted later runs nothing and is handed back at once).
    /// Once `body` has its connection it runs to its end, in a task of its own: a statement sent is never abandoned half
    /// way, neither by this timer nor by the caller's cancellation (a request whose client went away), so a connection
    /// never goes back to the pool inside a transaction.
    private func leasing<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let race = LeaseRace<T>()
        let (wait, busyWait, reachable, settings) = (self.connectionWait, self.busyWait, self.reachable, self.settings)
        return try await withCheckedThrowingContinuation { continuation in
            race.start(continuation)
            let work = Task {
                let wait = self.poolWaits.begin()
                defer { wait.abandoned() }
                do {
                    let value = try await self.client.withConnection { connection -> T? in
                        wait.acquired()
                        guard race.claimLease() else { return nil }
                        return try await body(connection)
                    }
                    if let value { race.finish(.success(value)) }
                } catch {
                    race.finish(.failure(error))
                }
            }
            race.timer = Task {
                var start = ContinuousClock.now
                // Nothing to decide before `wait`; then looked at in steps (another call may find the database gone).
                try? await Task.sleep(for: wait)
                while !race.answered, !Task.isCancelled {
                    let waited = ContinuousClock.now - start
                    if waited >= wait, reachable.value.load(ordering: .relaxed) {
                        // Waited long: a busy pool or a slow statement, or a database gone while no other call noticed?
                        // A new connection tells; asked again every `wait` while this call goes on. Two attempts in a row
                        // must fail before the database counts as gone: one connection lost to a blip (or a machine too
                        // busy to answer one) is not an outage, and a database really gone refuses both at once.
                        // A probe cut short because this call got its answer meanwhile (the timer is cancelled then) says
                        // nothing about the database: only probes that ran to their end count.
                        if case .unreachable = await Self.probeOutcome(settings), !Task.isCancelled,
                           case .unreachable = await Self.probeOutcome(settings), !Task.isCancelled {
                            reachable.value.store(false, ordering: .relaxed)
                        } else if !race.waiting {
                            start = ContinuousClock.now
                        }
                    }
                    let unreachable = waited >= wait && !reachable.value.load(ordering: .relaxed)
                    if race.waiting, waited >= busyWait || unreachable {
                        if race.abandon() { work.cancel() }
                        return
                    }
                    if !race.waiting, unreachable {
                        // A statement sent to a database that is gone: the caller is answered now; the statement ends (or
                        // fails) on its own, its outcome unknown to the caller, as with any lost connection.
                        race.abandon(leased: true)
                        return
                    }
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }        }
    }

    /// A PostgreSQL error as the domain's.
    static func domainError(_ error: PSQLError) -> SigilloError {
        if error.code == .server, let state = error.serverInfo?[.sqlState] {
            if state == "23505" {
                // unique_violation: the constraint's name tells the field (`holders_email_key`, `holders_open_mobile`, …).
                let constraint = error.serverInfo?[.constraintName] ?? ""
                let field = ["email", "mobile", "fiscal_code", "username", "serial", "token_key_id", "pkey"].first { constraint.contains($0) } ?? "record"
                let name = field == "pkey" ? "id" : field.replacingOccurrences(of: "_", with: " ")
                return SigilloError(.conflict, "\(name) already belongs to another record")
            }
            // Admin shutdown, crash recovery, cannot connect now, too many connections, read-only standby.
            if state.hasPrefix("57P") || state.hasPrefix("08") || state == "53300" || state == "25006" {
                return SigilloError(.databaseUnavailable, "the database cannot be reached now; try again shortly")
            }
            return SigilloError(.internalError, "database error \(state)")
        }
        return SigilloError(.databaseUnavailable, "the database cannot be reached now; try again shortly")
    }
}

/// One call's lease: answered once, by the body's result or by giving up before a connection came.
private final class LeaseRace<T: Sendable>: Sendable {
    private enum State {
        case idle
        /// Waiting for a connection.
        case waiting(CheckedContinuation<T, any Error>)
        /// The body runs on its connection.
        case leased(CheckedContinuation<T, any Error>)
        /// Answered.
        case done
    }

    private let state = Mutex<State>(.idle)
    private let timerTask = Mutex<Task<Void, Never>?>(nil)

    /// The task that gives up on the lease; cancelled once the caller is answered.
    var timer: Task<Void, Never>? {
        get { self.timerTask.withLock { $0 } }
        set { self.timerTask.withLock { $0 = newValue } }
    }

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        self.state.withLock { $0 = .waiting(continuation) }
    }

    /// Whether no connection came yet and the caller is not answered.
    var waiting: Bool {
        self.state.withLock { if case .waiting = $0 { return true } else { return false } }
    }

    /// The connection came: true if the body may run (the caller was not answered meanwhile).
    func claimLease() -> Bool {
        self.state.withLock { state in
            guard case .waiting(let continuation) = state else { return false }
            state = .leased(continuation)
            return true
        }
    }

    /// Answers the caller with the body's result, or the lease's failure if it failed before a connection came.
    func finish(_ result: Result<T, any Error>) {
        let continuation: CheckedContinuation<T, any Error>? = self.state.withLock { state in
            switch state {
            case .waiting(let continuation), .leased(let continuation):
                state = .done
                return continuation
            case .idle, .done:
                return nil
            }
        }
        self.timer?.cancel()
        continuation?.resume(with: result.mapError { error in
            // A lease that failed before a connection came: the database is out of reach.
            if case .failure = result, error is CancellationError { return SigilloError(.databaseUnavailable, "the database cannot be reached now; try again shortly") }
            return error
        })
    }

    /// Whether the caller was answered.
    var answered: Bool {
        self.state.withLock { if case .done = $0 { return true } else { return false } }
    }

    /// Gives up on the call: true if the caller was answered now. Without `leased`, only while no connection came (no
    /// body ran or will run); with it, also while the body runs on a connection to a database found gone.
    @discardableResult
    func abandon(leased: Bool = false) -> Bool {
        let continuation: CheckedContinuation<T, any Error>? = self.state.withLock { state in
            switch state {
            case .waiting(let continuation):
                state = .done
                return continuation
            case .leased(let continuation) where leased:
                state = .done
                return continuation
            default:
                return nil
            }
        }
        continuation?.resume(throwing: SigilloError(.databaseUnavailable, "the database cannot be reached now; try again shortly"))
        return continuation != nil
    }
}

/// A flag shared between tasks.
final class LeaseFlag: Sendable {
    let value: Atomic<Bool>

    init(_ value: Bool = false) {
        self.value = Atomic(value)
    }
}
