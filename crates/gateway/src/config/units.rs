//! Human units in the config file: durations (`250ms`, `10s`, `5m`, `1h`) and byte sizes
//! (`512`, `64KiB`, `1MiB`, `10MB`).

use std::time::Duration;

use super::raw::RawSize;

/// Parse `250ms`, `10s`, `5m`, `1h` (a bare number is refused: the unit must be explicit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{t}` needs a unit: ms, s, m, h or d"))?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{t}` is not a duration such as 500ms, 10s, 5m"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m, h or d)"
            ));
        }
    };
    Ok(d)
}

/// Parse a byte size; `KiB`/`MiB`/`GiB` are powers of 1024, `KB`/`MB`/`GB` of 1000.
pub fn parse_size(raw: &RawSize) -> Result<u64, String> {
    let t = match raw {
        RawSize::Bytes(n) => return Ok(*n),
        RawSize::Text(t) => t.trim(),
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{t}` is not a size such as 65536, 64KiB or 1MiB"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{t}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&RawSize::Bytes(7)), Ok(7));
        assert_eq!(parse_size(&RawSize::Text("64KiB".into())), Ok(65536));
        assert_eq!(parse_size(&RawSize::Text("1MB".into())), Ok(1_000_000));
        assert!(parse_size(&RawSize::Text("1PB".into())).is_err());
        assert!(parse_size(&RawSize::Text("99999999999999GiB".into())).is_err());
    }
}
