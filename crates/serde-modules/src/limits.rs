//! How much work a step output may ask of its reader.

use crate::{Error, Result};

/// CPython's default limit on the decimal digits of an integer read from text
/// (`sys.int_info.default_max_str_digits`).
pub const DEFAULT_MAX_INT_DIGITS: usize = 4300;

/// The smallest positive digit limit CPython accepts (`sys.int_info.str_digits_check_threshold`).
pub const MIN_MAX_INT_DIGITS: usize = 640;

/// How many times its own size a compressed stream may inflate to by default.
pub const DEFAULT_DECOMPRESSION_RATIO: u64 = 100;

/// What any compressed stream may inflate to by default, whatever the ratio allows.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 4 << 30;

/// What a compressed stream may always inflate to, however small it is (so small files of zeros still load).
pub const DECOMPRESSION_FLOOR_BYTES: u64 = 64 << 20;

/// The environment variable CPython reads for its digit limit; [`Limits::from_env`] honours it the same way.
pub const MAX_INT_DIGITS_VAR: &str = "PYTHONINTMAXSTRDIGITS";

/// The environment variable for [`Limits::max_decompressed_bytes`].
pub const MAX_DECOMPRESSED_BYTES_VAR: &str = "DAGSTER_WANDB_MAX_DECOMPRESSED_BYTES";

/// Bounds on what decoding a step output may cost, so a small hostile file cannot take minutes or gigabytes.
///
/// A compressed joblib stream may inflate to `decompression_ratio` times its size (never less than
/// [`DECOMPRESSION_FLOOR_BYTES`], never more than `max_decompressed_bytes`); an integer written in decimal
/// (pickle's `INT` and `LONG` opcodes) may have at most `max_int_digits` digits, CPython's rule (0: no limit).
/// Each refusal is an [`Error::Limit`] naming the limit.
///
/// ```
/// use serde_modules::{Limits, Module};
///
/// let huge = format!("I{}\n.", "9".repeat(5000)).into_bytes();
/// let err = Module::Pickle.decode_value(&huge).unwrap_err();
/// assert!(err.to_string().contains("5000 decimal digits, over the limit of 4300"));
///
/// let relaxed = Limits::default().with_max_int_digits(0);
/// assert!(Module::Pickle.decode_value_within(&huge, &relaxed).is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most decimal digits of one integer (0: unlimited, as CPython's `PYTHONINTMAXSTRDIGITS=0`).
    pub max_int_digits: usize,
    /// How many times its own size a compressed stream may inflate to.
    pub decompression_ratio: u64,
    /// What a compressed stream may inflate to at most, whatever its size.
    pub max_decompressed_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_int_digits: DEFAULT_MAX_INT_DIGITS,
            decompression_ratio: DEFAULT_DECOMPRESSION_RATIO,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
        }
    }
}

impl Limits {
    /// The defaults, with [`MAX_INT_DIGITS_VAR`] and [`MAX_DECOMPRESSED_BYTES_VAR`] applied when set.
    ///
    /// # Errors
    /// [`Error::Limit`] naming the variable and its value when it is not a number, or a digit limit below
    /// [`MIN_MAX_INT_DIGITS`] other than 0 (CPython refuses those too).
    pub fn from_env() -> Result<Limits> {
        let mut limits = Limits::default();
        if let Some(value) = std::env::var_os(MAX_INT_DIGITS_VAR) {
            let value = value.to_string_lossy();
            limits.max_int_digits = match value.trim().parse::<usize>() {
                Ok(n) if n == 0 || n >= MIN_MAX_INT_DIGITS => n,
                _ => {
                    return Err(Error::Limit {
                        reason: format!(
                            "{MAX_INT_DIGITS_VAR}={value:?}: expected 0 (no limit) or a number of digits of at least {MIN_MAX_INT_DIGITS}"
                        ),
                    });
                }
            };
        }
        if let Some(value) = std::env::var_os(MAX_DECOMPRESSED_BYTES_VAR) {
            let value = value.to_string_lossy();
            limits.max_decompressed_bytes = value.trim().parse().map_err(|_| Error::Limit {
                reason: format!("{MAX_DECOMPRESSED_BYTES_VAR}={value:?}: expected a number of bytes"),
            })?;
        }
        Ok(limits)
    }

    /// These limits with at most `digits` decimal digits per integer (0: unlimited).
    #[must_use]
    pub fn with_max_int_digits(self, digits: usize) -> Limits {
        Limits { max_int_digits: digits, ..self }
    }

    /// These limits with compressed streams allowed to inflate to `ratio` times their size.
    #[must_use]
    pub fn with_decompression_ratio(self, ratio: u64) -> Limits {
        Limits { decompression_ratio: ratio, ..self }
    }

    /// These limits with no compressed stream inflating past `bytes`.
    #[must_use]
    pub fn with_max_decompressed_bytes(self, bytes: u64) -> Limits {
        Limits { max_decompressed_bytes: bytes, ..self }
    }

    /// What a compressed stream of `compressed_len` bytes may inflate to.
    pub fn decompressed_cap(&self, compressed_len: usize) -> u64 {
        (compressed_len as u64)
            .saturating_mul(self.decompression_ratio)
            .max(DECOMPRESSION_FLOOR_BYTES)
            .min(self.max_decompressed_bytes)
    }

    /// Refuses an integer of `digits` decimal digits over [`Limits::max_int_digits`], naming where it is.
    pub(crate) fn check_int_digits(&self, digits: usize, position: usize) -> Result<()> {
        if self.max_int_digits != 0 && digits > self.max_int_digits {
            return Err(Error::Limit {
                reason: format!(
                    "the integer at byte {position} has {digits} decimal digits, over the limit of {} \
                     (CPython's int_max_str_digits; raise Limits::max_int_digits or {MAX_INT_DIGITS_VAR}, 0 for none)",
                    self.max_int_digits
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_a_multiple_of_the_size_between_the_floor_and_the_ceiling() {
        let limits = Limits::default();
        assert_eq!(limits.decompressed_cap(0), DECOMPRESSION_FLOOR_BYTES);
        assert_eq!(limits.decompressed_cap(1 << 20), 100 << 20);
        assert_eq!(limits.decompressed_cap(1 << 30), DEFAULT_MAX_DECOMPRESSED_BYTES);
        let tight = Limits { max_decompressed_bytes: 1000, ..Limits::default() };
        assert_eq!(tight.decompressed_cap(1 << 20), 1000);
    }

    #[test]
    fn digit_limits_follow_cpython() {
        let limits = Limits::default();
        assert!(limits.check_int_digits(4300, 0).is_ok());
        let err = limits.check_int_digits(4301, 7).unwrap_err().to_string();
        assert!(err.contains("byte 7 has 4301 decimal digits, over the limit of 4300"), "{err}");
        assert!(Limits { max_int_digits: 0, ..limits }.check_int_digits(usize::MAX, 0).is_ok());
    }
}
