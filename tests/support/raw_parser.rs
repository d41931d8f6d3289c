//! The raw-line parser of the tail tests: [`logship::parsers::raw::Raw`], ready for
//! `ParserSpec::Custom`.

use std::sync::Arc;

use logship::parsers::Parser;
pub(crate) use logship::parsers::raw::Raw;

/// [`Raw`], ready for `ParserSpec::Custom`.
pub(crate) fn raw() -> Arc<dyn Parser> {
    Arc::new(Raw)
}
