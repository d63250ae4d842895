//! Charts as inline SVG, drawn on the server: traffic over time (stacked bars) and quota used
//! against its limit (a meter). Colours come from the stylesheet's classes, so there is no inline style.

use super::html::{Esc, number};
use std::fmt::Write;

/// One bar of a traffic chart.
pub struct Bar {
    /// Shown on hover (`<title>`) and under the bar when `axis` is set.
    pub label: String,
    pub served: u64,
    pub failed: u64,
    /// Whether this bar's label is printed on the time axis.
    pub axis: bool,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// A stacked bar chart of served and failed requests, one bar per time bucket.
pub fn traffic_chart(caption: &str, bars: &[Bar]) -> String {
    let max = bars
        .iter()
        .map(|b| b.served + b.failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / bars.len().max(1) as f64;
    let bar_w = (slot * 0.8).max(1.0);
    let y = |v: u64| TOP + plot_h - v as f64 / max as f64 * plot_h;
    let mut svg = String::with_capacity(256 + bars.len() * 220);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}"><title>{}</title>"#,
        Esc(caption),
        Esc(caption)
    );
    // Axis: a baseline, the peak and zero on the left.
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH}" y2="{base}"/><line class="grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH}" y2="{TOP}"/><text class="tick" x="{lx}" y="{ty}" text-anchor="end">{peak}</text><text class="tick" x="{lx}" y="{base}" text-anchor="end">0</text>"#,
        base = TOP + plot_h,
        lx = LEFT - 6.0,
        ty = TOP + 4.0,
        peak = number(max),
    );
    for (i, bar) in bars.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar_w) / 2.0;
        let total = bar.served + bar.failed;
        let _ = write!(
            svg,
            "<g><title>{}: {} requests, {} failed</title>",
            Esc(&bar.label),
            number(total),
            number(bar.failed)
        );
        if bar.served > 0 {
            let top = y(bar.served);
            let _ = write!(
                svg,
                r#"<rect class="served" x="{x:.1}" y="{top:.1}" width="{bar_w:.1}" height="{:.1}"/>"#,
                TOP + plot_h - top
            );
        }
        if bar.failed > 0 {
            let (top, bottom) = (y(total), y(bar.served));
            let _ = write!(
                svg,
                r#"<rect class="failed" x="{x:.1}" y="{top:.1}" width="{bar_w:.1}" height="{:.1}"/>"#,
                (bottom - top).max(1.0)
            );
        }
        // An invisible full-height target, so an empty hour still shows its tooltip.
        let _ = write!(
            svg,
            r#"<rect class="hit" x="{x:.1}" y="{TOP}" width="{bar_w:.1}" height="{plot_h}"/></g>"#
        );
        if bar.axis {
            // The last label ends at its bar, so it is not cut at the chart's right edge.
            let (at, anchor) = if i + 1 == bars.len() {
                (x + bar_w, "end")
            } else {
                (x + bar_w / 2.0, "middle")
            };
            let _ = write!(
                svg,
                r#"<text class="tick" x="{at:.1}" y="{}" text-anchor="{anchor}">{}</text>"#,
                HEIGHT - 6.0,
                Esc(&bar.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A meter of `used` against `limit`: green, amber past 70 %, red when spent.
pub fn quota_meter(label: &str, used: u64, limit: u64) -> String {
    let (w, h) = (160.0, 12.0);
    let ratio = if limit == 0 {
        1.0
    } else {
        (used as f64 / limit as f64).min(1.0)
    };
    let level = match ratio {
        r if r >= 1.0 => "full",
        r if r >= 0.7 => "warn",
        _ => "ok",
    };
    format!(
        r#"<svg class="meter" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}: {used} of {limit}"><title>{label}: {used} of {limit} used</title><rect class="track" width="{w}" height="{h}" rx="3"/><rect class="{level}" width="{:.1}" height="{h}" rx="3"/></svg>"#,
        ratio * w,
        label = Esc(label),
        used = number(used),
        limit = number(limit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_one_group_per_bar_and_escapes_labels() {
        let bars = vec![
            Bar {
                label: "<b>".into(),
                served: 3,
                failed: 1,
                axis: true,
            },
            Bar {
                label: "later".into(),
                served: 0,
                failed: 0,
                axis: false,
            },
        ];
        let svg = traffic_chart("traffic", &bars);
        assert_eq!(svg.matches("<g>").count(), 2);
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
        assert!(svg.contains(r#"class="failed""#));
    }

    #[test]
    fn a_meter_turns_red_when_spent() {
        assert!(quota_meter("rpm", 30, 30).contains(r#"class="full""#));
        assert!(quota_meter("rpm", 25, 30).contains(r#"class="warn""#));
        assert!(quota_meter("rpm", 1, 30).contains(r#"class="ok""#));
        assert!(quota_meter("rpm", 1, 0).contains(r#"class="full""#));
    }
}
