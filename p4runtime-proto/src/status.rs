//! P4Runtime's batch error reporting (spec, "Error Reporting Messages"): a
//! failed Write or Read answers UNKNOWN, with a `google.rpc.Status` in the
//! gRPC status details holding one `p4.v1.Error` per batch element, in
//! order, OK for the elements that succeeded.

use crate::google::rpc::{self, Code};
use crate::p4::v1;
use prost::Message;

/// The status of a batch whose elements had `errors` (one per element, in
/// order; `canonical_code` OK for the elements that succeeded).
pub fn batch_status(message: &str, errors: &[v1::Error]) -> tonic::Status {
    let details = rpc::Status {
        code: Code::Unknown as i32,
        message: message.to_string(),
        details: errors
            .iter()
            .map(|e| {
                // An OK element carries the code only.
                let e = if e.canonical_code == Code::Ok as i32 {
                    v1::Error::default()
                } else {
                    e.clone()
                };
                prost_types::Any::from_msg(&e).expect("encoding into a Vec cannot fail")
            })
            .collect(),
    };
    tonic::Status::with_details(
        tonic::Code::Unknown,
        message,
        tonic::codegen::Bytes::from(details.encode_to_vec()),
    )
}

/// The per-element errors of a batch status, as a client reads them: empty
/// when the status carries no `google.rpc.Status` details or its details
/// are not `p4.v1.Error`s.
pub fn batch_errors(status: &tonic::Status) -> Vec<v1::Error> {
    let Ok(details) = rpc::Status::decode(status.details()) else {
        return Vec::new();
    };
    details
        .details
        .iter()
        .filter_map(|any| any.to_msg::<v1::Error>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_status_round_trips() {
        let errors = [
            v1::Error {
                canonical_code: Code::AlreadyExists as i32,
                message: "entry exists".into(),
                ..Default::default()
            },
            v1::Error {
                canonical_code: Code::Ok as i32,
                message: "ignored".into(),
                ..Default::default()
            },
        ];
        let status = batch_status("1 of 2 updates failed", &errors);
        assert_eq!(status.code(), tonic::Code::Unknown);
        assert_eq!(status.message(), "1 of 2 updates failed");
        let read = batch_errors(&status);
        assert_eq!(read.len(), 2);
        assert_eq!(read[0], errors[0]);
        assert_eq!(read[1], v1::Error::default());
        let details = rpc::Status::decode(status.details()).unwrap();
        assert_eq!(details.code, Code::Unknown as i32);
        assert_eq!(
            details.details[0].type_url,
            "type.googleapis.com/p4.v1.Error"
        );
    }

    #[test]
    fn statuses_without_details_have_no_batch_errors() {
        assert!(batch_errors(&tonic::Status::invalid_argument("x")).is_empty());
    }
}
