//! Plumbing shared by every ShiftGuard function.
