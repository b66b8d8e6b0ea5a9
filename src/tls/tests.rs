//! Unit tests of TLS file loading and reloading.
