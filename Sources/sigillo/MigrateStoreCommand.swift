import ArgumentParser
import Foundation
import Logging
import SigilloDomain
import SigilloPostgres
import SigilloServer

extension Admin {
    struct MigrateStore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "migrate-store",
            abstract: "Copy this installation's SQLite database into an empty PostgreSQL database (run with the server stopped).",
            discussion: "Then set `database` to the same URL in every node's configuration. The token stays the same: the seeds are sealed with its key.")

        @Option(help: "JSON configuration file (as for serve): its `database` is the SQLite file copied.")
        var config: String?
        @Option(help: "The PostgreSQL database: postgres://user@host:port/database[?sslmode=require].")
        var to: String
        @Option(help: "A file whose first line is the PostgreSQL password.")
        var passwordFile: String?
        @Option(help: "An environment variable holding the PostgreSQL password.")
        var passwordEnv: String?

        func run() async throws {
            let configuration = try ServerConfiguration.load(path: self.config)
            guard !PostgresSettings.isURL(configuration.database) else {
                throw ValidationError("the configured database is already PostgreSQL (\(configuration.database)); migrate-store copies from an SQLite file")
            }
            let settings: PostgresSettings
            do {
                settings = try PostgresSettings(url: self.to, passwordFile: self.passwordFile, passwordEnvironment: self.passwordEnv)
            } catch let error as SigilloDomain.SigilloError {
                throw ValidationError(error.message)
            }
            var logger = Logger(label: "sigillo")
            logger.logLevel = .warning
            let report = try await StoreMigration.copy(sqlite: configuration.database, to: settings, logger: logger)
            for (table, count) in report.copied.sorted(by: { $0.key < $1.key }) where count > 0 {
                print("\(table): \(count)")
            }
            print("copied \(configuration.database) to \(settings.redacted); audit chain intact, head #\(report.auditHead?.sequence ?? 0)")
        }
    }
}
