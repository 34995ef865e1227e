//! Mapping: spec (serde), compilation, templates, typed conversions. (stub)
