//! Memory deals (stub).
/// stub
pub struct MemoryDeals;
