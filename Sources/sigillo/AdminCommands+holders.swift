import ArgumentParser
import AsyncHTTPClient
import Foundation
import CSCProtocol
import NIOCore
import NIOHTTP1
import NIOSSL

extension Admin {
    struct Holders: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Holders.", subcommands: [Create.self, Show.self, List.self, SetMobile.self, Advance.self, Revoke.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create a holder (identity checked by the operator).")
            @OptionGroup var connection: AdminConnection
            @Option var givenName: String
            @Option var surname: String
            @Option(help: "Italian fiscal code (codice fiscale).") var fiscalCode: String
            @Option var email: String
            @Option(help: "International form, e.g. +393331234567.") var mobile: String
            @Flag(help: "Identity already checked at the desk: start as recognized (ready to invite) instead of a new order.") var recognized = false

            func run() async throws {
                let body = AdminAPI.CreateHolder(givenName: self.givenName, surname: self.surname, fiscalCode: self.fiscalCode, email: self.email, mobile: self.mobile,
                                                 recognized: self.recognized)
                let data = try await self.connection.send(.POST, "holders", body: body)
                try self.connection.output(data, as: AdminAPI.HolderView.self) { Admin.describe($0) }
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show a holder.")
            @OptionGroup var connection: AdminConnection
            @Argument var holderID: String

            func run() async throws {
                let data = try await self.connection.send(.GET, "holders/\(try Admin.segment(self.holderID))")
                try self.connection.output(data, as: AdminAPI.HolderView.self) { Admin.describe($0) }
            }
        }

        struct SetMobile: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Change a holder's mobile number (where SMS codes go).")
            @OptionGroup var connection: AdminConnection
            @Argument var holderID: String
            @Option(help: "International form, e.g. +393331234567.") var mobile: String

            func run() async throws {
                let data = try await self.connection.send(.PUT, "holders/\(try Admin.segment(self.holderID))/mobile", body: AdminAPI.ChangeMobile(mobile: self.mobile))
                try self.connection.output(data, as: AdminAPI.HolderView.self) { Admin.describe($0) }
            }
        }

        struct Advance: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Move a holder one enrolment step: payment_registered, awaiting_processing, awaiting_documents, recognized.")
            @OptionGroup var connection: AdminConnection
            @Argument var holderID: String
            @Option(help: "The next state.") var to: String

            func run() async throws {
                let data = try await self.connection.send(.POST, "holders/\(try Admin.segment(self.holderID))/state", body: AdminAPI.Transition(state: self.to))
                try self.connection.output(data, as: AdminAPI.HolderView.self) { Admin.describe($0) }
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Cancel an order or close a holder: every credential revoked (keys destroyed); a new order is needed.")
            @OptionGroup var connection: AdminConnection
            @Argument var holderID: String
            @Option(help: "RFC 5280 reason (see `admin revoke`).") var reason: String = "cessationOfOperation"

            func run() async throws {
                let data = try await self.connection.send(.POST, "holders/\(try Admin.segment(self.holderID))/revoke", body: AdminAPI.Revoke(reason: self.reason))
                try self.connection.output(data, as: AdminAPI.HolderView.self) { Admin.describe($0) }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List holders.")
            @OptionGroup var connection: AdminConnection

            func run() async throws {
                let data = try await self.connection.send(.GET, "holders")
                try self.connection.output(data, as: AdminAPI.HolderList.self) { list in
                    list.holders.isEmpty ? "no holders" : list.holders.map { "\($0.id)  \($0.state)  \($0.givenName) \($0.surname)  \($0.fiscalCode)  \($0.email)" }.joined(separator: "\n")
                }
            }
        }
    }
}
