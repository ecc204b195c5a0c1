import Dispatch
import Foundation

/// One fuzz target: a parser fed arbitrary bytes, with checks of what must hold for every input.
struct FuzzTarget: Sendable {
    /// What runs on each input. It returns normally for any input the code under test handles as it should
    /// (refusing bad input included) and traps (`FuzzCheck`) when something it must guarantee is broken.
    typealias Body = ([UInt8]) -> Void

    /// The name on the command line and of the corpus folder (`Tests/Fuzz/corpus/<name>`).
    let name: String
    let summary: String
    /// libFuzzer flags this target needs, before the command line's (which win).
    var libFuzzerFlags: [String] = []
    /// Builds what the target needs once (a token, a CA) and returns the body.
    let prepare: @Sendable () throws -> Body
}

/// Every target, in the order `make fuzz` runs them.
enum FuzzTargets {
    static let all: [FuzzTarget] = [
        CSCRequestTarget.target,
        Base64Target.target,
        PSSParametersTarget.target,
        OCSPRequestTarget.target,
        TimeStampQueryTarget.target,
        HardwareTokenCSVTarget.target,
        ServerConfigurationTarget.target,
        OAuthRequestTarget.target,
    ]
}

/// Checks of a target's guarantees. A failure prints what broke and traps, which libFuzzer records as a crash with
/// the input that caused it.
enum FuzzCheck {
    static func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
        if !condition() { fatalError("fuzz check failed: \(message())", file: file, line: line) }
    }

    static func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
        fatalError("fuzz check failed: \(message)", file: file, line: line)
    }
}

/// Runs async code to completion from the (synchronous) libFuzzer callback, which runs on the main thread, never on
/// the cooperative pool, so waiting here blocks no task the work needs.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = BlockingOutcome<T>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do { outcome.result = .success(try await body()) } catch { outcome.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try outcome.result!.get()
}

/// The result of `runBlocking`'s task: written once by the task before it signals, read once after the wait.
private final class BlockingOutcome<T: Sendable>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
