import ArgumentParser
import Foundation
import SigilloServer

/// `sigillo doctor`: checks a configuration before `sigillo serve` and says what to fix.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a configuration before starting: files and permissions, token and PIN, CA key and certificate, database, ports, clock.",
        discussion: """
            One line per check: ok, WARNING or FAIL with what to do. Exit status 0 when nothing failed, 1 otherwise. \
            Nothing is changed: no key is made in the token, no migration runs, and the PIN is tried once at most (never \
            when the token says one more wrong PIN would lock it). Run it with the server stopped: a running server holds \
            its ports.
            """)
    @Option(help: "JSON configuration file (as for serve); SIGILLO_* environment variables override it.")
    var config: String?

    func run() async throws {
        let doctor = SigilloServer.Doctor(configurationPath: self.config)
        let checks = await doctor.run { print($0.line) }
        let failed = checks.filter { $0.status == .fail }.count
        let warned = checks.filter { $0.status == .warning }.count
        print(failed == 0 ? "no problem found\(warned > 0 ? " (\(warned) warning\(warned == 1 ? "" : "s"))" : ""): sigillo serve can start"
              : "\(failed) problem\(failed == 1 ? "" : "s") to fix before sigillo serve can start")
        if failed > 0 { throw ExitCode(1) }
    }
}
