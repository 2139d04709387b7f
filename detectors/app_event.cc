#include "detectors/app_event.h"

namespace exfiltap::detectors {

std::string_view app_proto_name(AppProto proto) noexcept {
    switch (proto) {
    case AppProto::Unknown:
        return "unknown";
    case AppProto::Http:
        return "http";
    case AppProto::Tls:
        return "tls";
    case AppProto::Smtp:
        return "smtp";
    case AppProto::Ftp:
        return "ftp";
    case AppProto::FtpData:
        return "ftp-data";
    case AppProto::Pop3:
        return "pop3";
    case AppProto::Imap:
        return "imap";
    case AppProto::Ssh:
        return "ssh";
    case AppProto::Rdp:
        return "rdp";
    case AppProto::Smb:
        return "smb";
    case AppProto::Dns:
        return "dns";
    }
    return "unknown";
}

std::string_view login_outcome_name(LoginOutcome outcome) noexcept {
    switch (outcome) {
    case LoginOutcome::Attempt:
        return "attempt";
    case LoginOutcome::Success:
        return "success";
    case LoginOutcome::Failure:
        return "failure";
    }
    return "attempt";
}

}  // namespace exfiltap::detectors
