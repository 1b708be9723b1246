//! OCF resource agent (filled in by its own change).
