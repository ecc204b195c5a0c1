import ArgumentParser

@main
struct Sigillo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sigillo",
        abstract: "Sigillo remote signing server, its administration and its client.",
        subcommands: [Serve.self, Admin.self, CA.self, HSM.self, Activate.self, Status.self, Sign.self, Restore.self, Doctor.self]
    )
}
