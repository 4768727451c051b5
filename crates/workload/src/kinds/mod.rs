//! One module per workload kind, and the one list of kinds ([`for_each_kind!`]).
//!
//! A kind's module holds everything the model knows about it: its parameters (a serde type
//! that a scenario's keys are parsed through, with its defaults and `deny_unknown_fields`),
//! their accepted ranges, its verdict rule with its thresholds, and the figures of a client
//! that never reached its server. It implements [`KindParams`]; everything else here (the
//! [`Params`] enum and its dispatch, the keys a kind accepts) is generated from the list.
//!
//! Adding a kind: a module here, a line in [`for_each_kind!`], its figures in
//! `callwall_results::workload`, its client in `callwall-workload-net` (whose dispatch is
//! generated from the same list).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::{Figures, HttpProto, Kind, Outcome, ParamError};

/// The one list of workload kinds: `Variant module ParamsType`, where `Variant` names the
/// kind in [`Kind`] and [`Figures`] and `module` is the kind's module here (and its client's
/// module in `callwall-workload-net`). Calls `$callback!` with the list.
#[macro_export]
macro_rules! for_each_kind {
    ($callback:ident) => {
        $callback! {
            Message message MessageParams,
            VoiceNote voice_note VoiceNoteParams,
            Web web WebParams,
            Video video VideoParams,
        }
    };
}

/// Which server role a kind's client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serves {
    /// WebSocket chat over TLS.
    Message,
    /// HTTPS over TCP and HTTP/3 over QUIC.
    Http,
}

/// What a kind's module provides about its parameters.
pub trait KindParams: Sized + Copy + Default + PartialEq + Serialize + DeserializeOwned {
    /// The figures its client measures.
    type Figures;
    const KIND: Kind;
    const SERVES: Serves;
    /// How HTTP is carried, for kinds that use HTTP over TCP or QUIC.
    fn proto(&self) -> Option<HttpProto> {
        None
    }
    /// Checks every value against the kind's ranges; the error names the key.
    fn validate(&self) -> Result<(), ParamError>;
    /// What a client that never reached its server measured.
    fn empty_figures(&self) -> Self::Figures;
    /// The verdict for figures measured under these parameters (total).
    fn judge(&self, figures: &Self::Figures) -> Outcome;
}

macro_rules! declare_kinds {
    ($($variant:ident $module:ident $params:ident,)*) => {
        $(pub mod $module;)*
        $(pub use $module::$params;)*

        /// One kind's parameters.
        #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        pub enum Params {
            $($variant($params),)*
        }

        impl Params {
            pub fn kind(&self) -> Kind {
                match self {
                    $(Params::$variant(_) => Kind::$variant,)*
                }
            }

            /// How HTTP is carried, for the kinds that use HTTP over TCP or QUIC.
            pub fn proto(&self) -> Option<HttpProto> {
                match self {
                    $(Params::$variant(p) => p.proto(),)*
                }
            }

            /// Which server role the kind's client talks to.
            pub fn serves(&self) -> Serves {
                match self {
                    $(Params::$variant(_) => <$params as KindParams>::SERVES,)*
                }
            }

            /// The defaults of a kind.
            pub fn default_for(kind: Kind) -> Params {
                match kind {
                    $(Kind::$variant => Params::$variant($params::default()),)*
                }
            }

            /// Checks every value against its kind's ranges; the error names the key and
            /// the accepted range.
            pub fn validate(&self) -> Result<(), ParamError> {
                match self {
                    $(Params::$variant(p) => p.validate(),)*
                }
            }

            /// All-zero figures: what a workload that never reached its server measured.
            pub fn empty_figures(&self) -> Figures {
                match self {
                    $(Params::$variant(p) => Figures::$variant(p.empty_figures()),)*
                }
            }

            /// The verdict for `figures` measured under these parameters. Figures of another
            /// kind (a bug in the caller) are `failed`.
            pub fn judge(&self, figures: &Figures) -> Outcome {
                match (self, figures) {
                    $((Params::$variant(p), Figures::$variant(f)) => p.judge(f),)*
                    #[allow(unreachable_patterns)]
                    _ => Outcome::Failed,
                }
            }

            /// Parses a kind's keys (a table without `kind`) through its parameter type:
            /// unset keys take the defaults, an unknown key is an error.
            pub fn from_keys<'de, D: Deserializer<'de>>(kind: Kind, d: D) -> Result<Params, D::Error> {
                match kind {
                    $(Kind::$variant => $params::deserialize(d).map(Params::$variant),)*
                }
            }

            /// The keys a kind accepts in a scenario file, sorted.
            pub fn keys(kind: Kind) -> Vec<String> {
                match kind {
                    $(Kind::$variant => keys_of_default::<$params>(),)*
                }
            }
        }
    };
}

for_each_kind!(declare_kinds);

/// The field names of `P` as its `Default` serializes them (every field of a params struct
/// is serialized), sorted.
fn keys_of_default<P: KindParams>() -> Vec<String> {
    match serde_json::to_value(P::default()) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The verdict for `figures` measured under `params` (see each kind's module for its rule).
pub fn judge(params: &Params, figures: &Figures) -> Outcome {
    params.judge(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_keys_come_from_the_types() {
        for k in Kind::ALL {
            let p = Params::default_for(k);
            assert_eq!(p.kind(), k);
            p.validate().unwrap();
            assert_eq!(p.judge(&p.empty_figures()), Outcome::Failed, "{k}: nothing measured");
        }
        assert_eq!(Params::keys(Kind::Message), ["count", "interval", "size"]);
        assert_eq!(Params::keys(Kind::Video), ["bitrate", "chunk", "duration", "proto"]);
    }

    #[test]
    fn keys_parse_through_the_kind_type() {
        let v = serde_json::json!({ "count": 3 });
        let Params::Message(m) = Params::from_keys(Kind::Message, v).unwrap() else { panic!() };
        assert_eq!((m.count, m.size), (3, MessageParams::default().size), "defaults fill the rest");
        let e = Params::from_keys(Kind::Message, serde_json::json!({ "bitrate": "1mbit" }));
        assert!(e.unwrap_err().to_string().contains("unknown field `bitrate`"));
    }

    #[test]
    fn mismatched_figures_are_failed() {
        let p = Params::default_for(Kind::VoiceNote);
        let f = Params::default_for(Kind::Message).empty_figures();
        assert_eq!(judge(&p, &f), Outcome::Failed);
    }
}
