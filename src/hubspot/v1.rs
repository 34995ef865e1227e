//! v1 wire types (stub).
