import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SigilloPostgres
import SigilloServer
#if canImport(Glibc)
import Glibc
#endif

extension Admin {
    /// `sigillo admin backup DIR`: an online copy of the database through the admin listener.
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy the running server's database (online, one consistent snapshot) into a new folder, with its manifest.",
            discussion: """
                DIR must not exist or be empty; it is made private (0700), its files 0600: sigillo.sqlite (the copy), \
                manifest.json (time, versions, the SHA-256 of the copy, the token and the key ids the copy needs) and \
                README.txt (how to back up the token, and how to restore). The token is NOT in it: back it up with its \
                own procedure (README "Backups"). A PostgreSQL database is refused: use pg_dump -Fc.
                """)
        @OptionGroup var connection: AdminConnection
        @Argument(help: "The folder to write (new or empty).") var directory: String

        func run() async throws {
            let folder = URL(fileURLWithPath: self.directory)
            let created = try Self.prepare(folder)
            let database = folder.appendingPathComponent(BackupManifest.databaseFile)
            let partial = folder.appendingPathComponent(BackupManifest.databaseFile + ".partial")
            do {
                let manifest = try await self.download(to: partial.path)
                let (digest, bytes) = try BackupFiles.sha256(path: partial.path)
                guard digest == manifest.sha256, bytes == manifest.bytes else {
                    throw CommandFailure("the copy received (SHA-256 \(digest), \(bytes) bytes) is not the one the server made (\(manifest.sha256), \(manifest.bytes) bytes)")
                }
                guard rename(partial.path, database.path) == 0 else { throw CommandFailure("cannot rename \(partial.path): \(String(cString: strerror(errno)))") }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                try Self.writePrivate(try encoder.encode(manifest) + Data("\n".utf8), to: folder.appendingPathComponent("manifest.json").path)
                try Self.writePrivate(Data(manifest.readme.utf8), to: folder.appendingPathComponent("README.txt").path)
                if self.connection.json {
                    print(String(decoding: try encoder.encode(manifest), as: UTF8.self))
                } else {
                    print("backup written to \(folder.path): \(manifest.database) (schema version \(manifest.schemaVersion), \(manifest.bytes) bytes, SHA-256 \(manifest.sha256))")
                    let missing = manifest.tokenKeys.filter { !$0.present }.map(\.id)
                    print("the token is not in it: back up token '\(manifest.token.label)'\(manifest.token.serial.map { " (serial \($0))" } ?? "") with its own procedure (README.txt)")
                    if !missing.isEmpty { print("note: the token had no \(missing.joined(separator: ", ")) when the copy was made") }
                }
            } catch {
                for file in [partial, database, folder.appendingPathComponent("manifest.json"), folder.appendingPathComponent("README.txt")] {
                    try? FileManager.default.removeItem(at: file)
                }
                if created { try? FileManager.default.removeItem(at: folder) }
                throw error
            }
        }

        /// Creates `folder` 0700, or accepts an empty one (made 0700). - Returns: whether it was created.
        static func prepare(_ folder: URL) throws -> Bool {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder) {
                guard isFolder.boolValue else { throw CommandFailure("\(folder.path) exists and is not a folder") }
                let contents = try FileManager.default.contentsOfDirectory(atPath: folder.path)
                guard contents.isEmpty else { throw CommandFailure("\(folder.path) exists and is not empty: a backup goes into a new or empty folder") }
                guard chmod(folder.path, 0o700) == 0 else { throw CommandFailure("cannot make \(folder.path) private (mode 700): \(String(cString: strerror(errno)))") }
                return false
            }
            guard mkdir(folder.path, 0o700) == 0 else { throw CommandFailure("cannot create \(folder.path): \(String(cString: strerror(errno)))") }
            // mkdir applies the umask: make sure.
            _ = chmod(folder.path, 0o700)
            return true
        }

        /// Writes `data` to a new file at `path`, mode 0600.
        static func writePrivate(_ data: Data, to path: String) throws {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard descriptor >= 0 else { throw CommandFailure("cannot create \(path): \(String(cString: strerror(errno)))") }
            let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
        }

        /// Streams `POST backup` into a new file at `path` (0600) and returns the manifest the server sent.
        func download(to path: String) async throws -> BackupManifest {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.trustRoots = .file(self.connection.ca)
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(self.connection.cert).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: self.connection.key, format: .pem))
            } catch {
                throw CommandFailure("cannot read the operator certificate \(self.connection.cert) or key \(self.connection.key): \(error)")
            }
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard descriptor >= 0 else { throw CommandFailure("cannot create \(path): \(String(cString: strerror(errno)))") }
            let file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            do {
                var request = HTTPClientRequest(url: self.connection.url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/admin/v1/backup")
                request.method = .POST
                request.body = .bytes(ByteBuffer())
                let response: HTTPClientResponse
                do {
                    response = try await client.execute(request, timeout: .hours(2))
                } catch {
                    throw CommandFailure("cannot reach the admin listener at \(self.connection.url): \(error)")
                }
                guard response.status == .ok else {
                    let data = Data((try await response.body.collect(upTo: 1 << 20)).readableBytesView)
                    let error = try? JSONDecoder().decode([String: String].self, from: data)
                    FileHandle.standardError.write(Data("error: \(error?["error_description"] ?? "HTTP \(response.status.code)") (\(error?["error"] ?? "\(response.status.code)"))\n".utf8))
                    throw ExitCode(1)
                }
                guard let header = response.headers.first(name: "Sigillo-Backup-Manifest"), let json = Data(base64Encoded: header),
                      let manifest = try? JSONDecoder().decode(BackupManifest.self, from: json) else {
                    throw CommandFailure("the server sent no backup manifest (is it a Sigillo admin listener of this version?)")
                }
                for try await chunk in response.body {
                    try file.write(contentsOf: Data(chunk.readableBytesView))
                }
                try file.synchronize()
                try file.close()
                try await client.shutdown()
                return manifest
            } catch {
                try? file.close()
                try? await client.shutdown()
                throw error
            }
        }
    }
}

/// `sigillo restore DIR`: places a backup's database copy where the configuration expects it (server stopped).
struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a `sigillo admin backup` folder: check its manifest and SHA-256, then place the database copy at the configured `database`.",
        discussion: """
            Run it with the server stopped, after restoring the token the backup names (its manifest.json lists the key ids). \
            The configured database must not exist (move the old one away). A copy whose schema is newer than this binary \
            is refused. Then run `sigillo doctor` and `sigillo serve`: a database restored next to another token is refused at \
            start (its seed key).
            """)
    @Option(help: "JSON configuration file (as for serve): its `database` is where the copy goes.")
    var config: String?
    @Argument(help: "The backup folder.") var directory: String

    func run() async throws {
        let configuration = try ServerConfiguration.load(path: self.config)
        guard !PostgresSettings.isURL(configuration.database) else {
            throw CommandFailure("the configured database is PostgreSQL: restore its pg_dump with pg_restore; sigillo restore places SQLite copies")
        }
        let (manifest, copy): (BackupManifest, String)
        do {
            (manifest, copy) = try BackupManifest.verify(folder: self.directory)
        } catch let error as ConfigurationError {
            throw CommandFailure(error.description)
        }
        let target = configuration.database
        for file in [target, target + "-wal", target + "-shm"] where FileManager.default.fileExists(atPath: file) {
            throw CommandFailure("\(file) exists: stop the server and move the current database away first (restore never overwrites one)")
        }
        let folder = URL(fileURLWithPath: target).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        if !FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } else if !isFolder.boolValue {
            throw CommandFailure("\(folder) is not a folder")
        }
        let partial = target + ".restoring"
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: copy))
        defer { try? input.close() }
        let descriptor = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { throw CommandFailure("cannot create \(partial): \(String(cString: strerror(errno)))") }
        let output = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty { try output.write(contentsOf: chunk) }
            try output.synchronize()
            try output.close()
            let (digest, _) = try BackupFiles.sha256(path: partial)
            guard digest == manifest.sha256 else { throw CommandFailure("the copy placed at \(partial) does not have the manifest's SHA-256") }
            guard rename(partial, target) == 0 else { throw CommandFailure("cannot rename \(partial) to \(target): \(String(cString: strerror(errno)))") }
        } catch {
            try? output.close()
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        print("restored \(copy) to \(target) (taken \(manifest.createdAt), schema version \(manifest.schemaVersion), SHA-256 checked)")
        let label = (try? configuration.tokenConfiguration().tokenLabel) ?? configuration.token
        if label != manifest.token.label {
            print("note: the configuration names token '\(label)', the backup was made with '\(manifest.token.label)': serve refuses a token without this database's seed key")
        }
        print("it needs token '\(manifest.token.label)'\(manifest.token.serial.map { " (serial \($0))" } ?? "") with \(manifest.tokenKeys.filter(\.present).map(\.id).joined(separator: ", "))")
        print("next: sigillo doctor\(self.config.map { " --config \($0)" } ?? ""), then sigillo serve; afterwards sigillo admin audit verify (and reset-anchor once the loss is understood)")
    }
}

/// A command that could not do its work (ArgumentParser prints "Error: …" without the usage text a `ValidationError` adds).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
