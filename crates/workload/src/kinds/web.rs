//! `web`: one page of `page_size`, then `objects` objects (map tiles) of `object_size`, over
//! HTTPS/1.1 on TCP or HTTP/3 on QUIC.
//!
//! Verdict: `failed` when the page is missing or fewer than [`OBJECTS_DEGRADED`] of the
//! objects arrived; `ok` when everything arrived within [`MS_PER_100KB_OK`] per 100 kB;
//! `degraded` otherwise.

use callwall_units::Bytes;
use serde::{Deserialize, Serialize};

use super::{KindParams, Serves};
use crate::limits::{check_bytes, check_count, Range};
use crate::{HttpProto, Kind, Outcome, ParamError, WebFigures};

/// Parameters of a web page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebParams {
    pub page_size: Bytes,
    pub objects: u32,
    pub object_size: Bytes,
    pub proto: HttpProto,
}

impl Default for WebParams {
    fn default() -> Self {
        // A map view: a small page and 12 tiles of about 20 KB (the Krasnodar taxi case).
        WebParams {
            page_size: Bytes::new(30_000),
            objects: 12,
            object_size: Bytes::new(20_000),
            proto: HttpProto::Https,
        }
    }
}

pub const PAGE_SIZE: Range<Bytes> = Range { min: Bytes::new(1), max: Bytes::new(8 << 20) };
pub const OBJECTS: Range<u32> = Range { min: 0, max: 200 };
pub const OBJECT_SIZE: Range<Bytes> = Range { min: Bytes::new(1), max: Bytes::new(8 << 20) };

/// A page with its objects: at most this many ms per 100 kB for `ok`.
pub const MS_PER_100KB_OK: f64 = 2000.0;
/// Fraction of objects that must arrive for `degraded` rather than `failed`.
pub const OBJECTS_DEGRADED: f64 = 0.5;

impl KindParams for WebParams {
    type Figures = WebFigures;
    const KIND: Kind = Kind::Web;
    const SERVES: Serves = Serves::Http;

    fn proto(&self) -> Option<HttpProto> {
        Some(self.proto)
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_bytes("page_size", self.page_size, PAGE_SIZE)?;
        check_count("objects", self.objects, OBJECTS)?;
        check_bytes("object_size", self.object_size, OBJECT_SIZE)
    }

    fn empty_figures(&self) -> WebFigures {
        WebFigures {
            proto: self.proto,
            objects: self.objects,
            failed_objects: self.objects,
            ..Default::default()
        }
    }

    fn judge(&self, f: &WebFigures) -> Outcome {
        if !f.page_ok {
            return Outcome::Failed;
        }
        let want = f64::from(self.objects);
        if self.objects > 0 && f64::from(f.objects_ok) < want * OBJECTS_DEGRADED {
            return Outcome::Failed;
        }
        let bytes = self.page_size.get() + u64::from(self.objects) * self.object_size.get();
        let budget = MS_PER_100KB_OK * (bytes as f64 / 100_000.0).max(1.0);
        match f.complete_ms {
            Some(ms) if f.objects_ok == self.objects && ms <= budget => Outcome::Ok,
            _ => Outcome::Degraded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_pages() {
        let p = WebParams::default();
        let f = |page_ok, ok: u32, ms: Option<f64>| WebFigures {
            page_ok,
            objects: 12,
            objects_ok: ok,
            failed_objects: 12 - ok,
            complete_ms: ms,
            ..Default::default()
        };
        assert_eq!(p.judge(&f(true, 12, Some(100.0))), Outcome::Ok);
        assert_eq!(p.judge(&f(true, 12, Some(60_000.0))), Outcome::Degraded);
        assert_eq!(p.judge(&f(true, 8, None)), Outcome::Degraded);
        assert_eq!(p.judge(&f(true, 2, None)), Outcome::Failed);
        assert_eq!(p.judge(&f(false, 12, None)), Outcome::Failed);
    }

    #[test]
    fn limits_name_the_key() {
        let p = WebParams { object_size: Bytes::new(1 << 40), ..Default::default() };
        let e = p.validate().unwrap_err();
        assert_eq!(e.key, "object_size");
        assert!(e.message.contains("use"), "{e}");
    }
}
