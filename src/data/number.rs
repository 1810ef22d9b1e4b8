//! Parsing of one cell as f32, with the reason when it is not a finite number.

/// Texts that pandas `read_csv` reads as NaN by default (the `na_values` documentation of
/// pandas 2.1 and later). The comparison is exact, so `NULL` and `null` match but `Null` does not.
const MISSING_MARKERS: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// Thousands separators that the error hint recognizes.
const THOUSANDS_SEPARATORS: [char; 4] = [',', ' ', '\'', '_'];

/// Reason a cell is not a finite number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CellError {
    /// Empty, a missing-value marker, or any other text that parses as NaN.
    Missing,
    /// Infinite, or outside the f32 range after rounding.
    NonFinite,
    /// Digits grouped by thousands separators, such as `1,234`.
    ThousandsSeparator,
    /// A decimal comma, such as `1,5`.
    DecimalComma,
    /// Any other text.
    Invalid,
}

/// Parses a trimmed cell as f64 and rounds it to f32.
///
/// Going through f64 matches pandas (which parses to float64) followed by
/// `torch.tensor(..., dtype=torch.float32)`. Parsing straight to f32 can differ in the last
/// bit when the decimal lies within half an f64 ulp of a point halfway between two f32 values.
///
/// NOTE: Rust's f64 parsing rounds correctly, but the default converter of the pandas C parser
/// (`float_precision=None`) does not always. The two can differ in the last f64 bit, which
/// changes the f32 only if the value lies within an f64 ulp of a point halfway between two f32s.
pub(super) fn parse_cell(text: &str, delimiter: u8) -> Result<f32, CellError> {
    if MISSING_MARKERS.contains(&text) {
        return Err(CellError::Missing);
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_nan() => Err(CellError::Missing),
        Ok(value) => {
            let rounded = value as f32;
            if rounded.is_finite() {
                Ok(rounded)
            } else {
                Err(CellError::NonFinite)
            }
        }
        Err(_) => Err(classify_invalid(text, delimiter)),
    }
}

/// Tells number-like texts with separators apart from other invalid text.
///
/// "1,234" fits both patterns. It counts as a decimal comma when the delimiter is not a comma,
/// because files with a decimal comma usually use `;` as delimiter, and as thousands otherwise.
fn classify_invalid(text: &str, delimiter: u8) -> CellError {
    let thousands = has_thousands_separators(text);
    let decimal_comma = has_decimal_comma(text);
    if decimal_comma && (delimiter != b',' || !thousands) {
        CellError::DecimalComma
    } else if thousands {
        CellError::ThousandsSeparator
    } else {
        CellError::Invalid
    }
}

fn strip_sign(text: &str) -> &str {
    text.strip_prefix(['+', '-']).unwrap_or(text)
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// Returns whether `text` splits at `separator` into 1 to 3 digits followed by one or more
/// groups of exactly 3 digits.
fn is_grouped(text: &str, separator: char) -> bool {
    let mut groups = text.split(separator);
    let first = groups.next().unwrap_or_default();
    if !is_digits(first) || first.len() > 3 {
        return false;
    }
    let mut rest = 0;
    for group in groups {
        if !is_digits(group) || group.len() != 3 {
            return false;
        }
        rest += 1;
    }
    rest > 0
}

/// Matches `[+-]1,234,567[.89]` with `,`, space, `'` or `_` as the separator.
fn has_thousands_separators(text: &str) -> bool {
    let unsigned = strip_sign(text);
    let (integer, fraction) = match unsigned.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (unsigned, None),
    };
    if fraction.is_some_and(|fraction| !fraction.is_empty() && !is_digits(fraction)) {
        return false;
    }
    let Some(separator) = integer.chars().find(|c| !c.is_ascii_digit()) else {
        return false;
    };
    THOUSANDS_SEPARATORS.contains(&separator) && is_grouped(integer, separator)
}

/// Matches `[+-][digits],digits[e[+-]digits]`, where the digits before the comma may be grouped
/// by dots (`1.234,5`).
fn has_decimal_comma(text: &str) -> bool {
    let unsigned = strip_sign(text);
    let mantissa = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) if is_digits(strip_sign(exponent)) => mantissa,
        Some(_) => return false,
        None => unsigned,
    };
    let Some((integer, fraction)) = mantissa.split_once(',') else {
        return false;
    };
    let integer_ok = integer.is_empty() || is_digits(integer) || is_grouped(integer, '.');
    integer_ok && is_digits(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_cell_numbers() {
        assert_eq!(parse_cell("1.5", b','), Ok(1.5));
        assert_eq!(parse_cell("-2e3", b','), Ok(-2000.0));
        assert_eq!(parse_cell("+.5", b','), Ok(0.5));
        assert_eq!(parse_cell("1e-50", b','), Ok(0.0));
    }

    #[test]
    fn parse_cell_missing_markers() {
        for text in ["", "NA", "N/A", "NaN", "nan", "null", "None", "NAN", "+nan"] {
            assert_eq!(parse_cell(text, b','), Err(CellError::Missing), "{text:?}");
        }
    }

    #[test]
    fn parse_cell_non_finite() {
        for text in ["inf", "-inf", "Infinity", "1e39", "-1e400"] {
            assert_eq!(parse_cell(text, b','), Err(CellError::NonFinite), "{text:?}");
        }
    }

    #[test]
    fn invalid_text_hints() {
        let cases = [
            ("1,234", b',', CellError::ThousandsSeparator),
            ("-1,234,567.25", b',', CellError::ThousandsSeparator),
            ("1 234", b';', CellError::ThousandsSeparator),
            ("1,234,567", b';', CellError::ThousandsSeparator),
            ("1,234", b';', CellError::DecimalComma),
            ("1,5", b';', CellError::DecimalComma),
            ("1,5", b',', CellError::DecimalComma),
            ("-0,25e-3", b';', CellError::DecimalComma),
            ("1.234,5", b';', CellError::DecimalComma),
            ("abc", b',', CellError::Invalid),
            ("1,2,3", b';', CellError::Invalid),
            ("12,34,567", b',', CellError::Invalid),
            ("1.2.3", b',', CellError::Invalid),
        ];
        for (text, delimiter, expected) in cases {
            assert_eq!(classify_invalid(text, delimiter), expected, "{text:?}");
        }
    }
}
