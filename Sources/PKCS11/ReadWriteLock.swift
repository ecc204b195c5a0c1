import Foundation

/// A `pthread_rwlock_t` that prefers writers: once a writer waits, new shared holders wait behind it, so a
/// re-initialisation of the module is not starved by workers taking job after job.
///
/// `@unchecked Sendable`: the lock is the synchronisation; its storage is allocated once and never moves.
final class ReadWriteLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        self.lock = .allocate(capacity: 1)
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        let rc = pthread_rwlock_init(self.lock, &attributes)
        pthread_rwlockattr_destroy(&attributes)
        precondition(rc == 0, "pthread_rwlock_init failed: \(rc)")
    }

    deinit {
        pthread_rwlock_destroy(self.lock)
        self.lock.deallocate()
    }

    func lockShared() { pthread_rwlock_rdlock(self.lock) }
    func unlockShared() { pthread_rwlock_unlock(self.lock) }
    func lockExclusive() { pthread_rwlock_wrlock(self.lock) }
    func unlockExclusive() { pthread_rwlock_unlock(self.lock) }
}
