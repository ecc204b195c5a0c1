import Foundation
import SigilloDomain
#if canImport(Glibc)
import Glibc
#endif

/// The database's files on disk, readable and writable by the server's user only: the folder 0700, the database and
/// its write-ahead log (`-wal`) and shared-memory index (`-shm`) 0600.
///
/// The database file is created 0600 before SQLite opens it, and SQLite gives the `-wal` and `-shm` files it creates
/// the database file's mode. No umask is set: it belongs to the whole process, and would race with every other thread
/// creating a file at the same moment.
enum DatabaseFiles {
    /// What SQLite keeps next to the database in WAL mode.
    static let companions = ["-wal", "-shm"]

    /// Makes the folder of `path` private and creates the database file private, or makes the existing files private.
    ///
    /// A missing folder is created 0700. An existing one that others may write to is refused: they could delete the
    /// database or plant its `-wal` file (and changing the mode of a folder shared with others, `/tmp` say, is not ours
    /// to do). One that others may only read or enter is made 0700 when it belongs to this user, and `warning` says so;
    /// give the database a folder of its own (the default `var/` is one).
    ///
    /// - Throws: `SigilloError` `internalError` naming the folder and what to do.
    static func prepare(path: String, warning: (String) -> Void) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try self.prepareFolder(folder, warning: warning)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if descriptor >= 0 {
            close(descriptor)
        } else if errno != EEXIST {
            throw SigilloError(.internalError, "cannot create the database \(path): \(String(cString: strerror(errno)))")
        }
        try self.restrict(path: path)
    }

    /// Sets the database file and its `-wal` and `-shm` companions that exist to 0600. A companion that is not a
    /// regular file (a symbolic link planted next to the database) is refused.
    static func restrict(path: String) throws {
        for file in [path] + self.companions.map({ path + $0 }) {
            var info = stat()
            let found = file == path ? stat(file, &info) : lstat(file, &info)
            guard found == 0 else { continue }
            guard info.st_mode & S_IFMT == S_IFREG else {
                throw SigilloError(.internalError, "\(file) is not a regular file: remove it before opening the database")
            }
            if info.st_mode & 0o077 != 0, chmod(file, 0o600) != 0 {
                throw SigilloError(.internalError, "cannot make \(file) private (mode 600): \(String(cString: strerror(errno)))")
            }
        }
    }

    private static func prepareFolder(_ folder: String, warning: (String) -> Void) throws {
        var info = stat()
        guard stat(folder, &info) == 0 else {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            return
        }
        let mode = info.st_mode & 0o7777
        let octal = String(mode, radix: 8)
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw SigilloError(.internalError, "the database folder \(folder) is not a folder")
        }
        guard mode & 0o022 == 0 else {
            throw SigilloError(.internalError, """
                the database folder \(folder) can be written by other users (mode \(octal)): they could replace the database or plant \
                its -wal file; give the database a folder of its own, mode 700
                """)
        }
        guard mode & 0o077 != 0 else { return }
        guard info.st_uid == geteuid() else {
            throw SigilloError(.internalError, "the database folder \(folder) belongs to another user and others can read it (mode \(octal)); make it private: chmod 700")
        }
        guard chmod(folder, mode & ~0o077) == 0 else {
            throw SigilloError(.internalError, "cannot make the database folder \(folder) private (mode 700): \(String(cString: strerror(errno)))")
        }
        warning("the database folder \(folder) could be read by other users (mode \(octal)); it is now private (mode \(String(mode & ~0o077, radix: 8)))")
    }
}
