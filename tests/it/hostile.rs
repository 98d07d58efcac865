//! Hostile input: property tests over every string field, and the template scan.
