//! Open-loop timetable: the intended start time of the n-th request of the run.
//!
//! The run is a list of segments (the warm-up at the first stage's starting rate, then each stage,
//! constant or a linear ramp). Request `n` starts when the integral of the rate reaches `n`. The
//! connections share one sequence: connection `c` of `C` takes requests `c, c + C, c + 2C, …`.

use std::time::Duration;

use crate::plan::RateStage;

#[derive(Debug, Clone, Copy)]
struct Segment {
    start_s: f64,
    /// Requests before this segment.
    start_n: f64,
    from_rate: f64,
    to_rate: f64,
    /// `f64::INFINITY` for the open-ended last segment of a run until Ctrl-C.
    duration_s: f64,
}

impl Segment {
    fn count(&self) -> f64 {
        if self.duration_s.is_infinite() {
            return f64::INFINITY;
        }
        (self.from_rate + self.to_rate) / 2.0 * self.duration_s
    }

    /// Seconds into the segment at which `k` requests have been started.
    fn time_of(&self, k: f64) -> f64 {
        let (a, b, d) = (self.from_rate, self.to_rate, self.duration_s);
        if (b - a).abs() < 1e-9 || d.is_infinite() {
            return k / a.max(1e-9);
        }
        let slope = (b - a) / d;
        (-a + (a * a + 2.0 * slope * k).max(0.0).sqrt()) / slope
    }
}

/// The timetable of one open-loop run.
#[derive(Debug, Clone)]
pub struct Timetable {
    segments: Vec<Segment>,
}

impl Timetable {
    /// `stages` after a warm-up at the first stage's starting rate. `open_ended`: the last stage
    /// never ends (run until Ctrl-C).
    pub fn new(warmup: Duration, stages: &[RateStage], open_ended: bool) -> Timetable {
        let mut segments = Vec::new();
        let mut t = 0.0;
        let mut n = 0.0;
        let first = stages
            .first()
            .map_or(1.0, |s| if s.from_rate_per_sec > 0.0 { s.from_rate_per_sec } else { s.rate_per_sec });
        if !warmup.is_zero() {
            let s = Segment {
                start_s: 0.0,
                start_n: 0.0,
                from_rate: first,
                to_rate: first,
                duration_s: warmup.as_secs_f64(),
            };
            t += s.duration_s;
            n += s.count();
            segments.push(s);
        }
        for (i, st) in stages.iter().enumerate() {
            let last = i + 1 == stages.len();
            let duration_s = if last && open_ended { f64::INFINITY } else { st.duration.as_secs_f64() };
            let s = Segment {
                start_s: t,
                start_n: n,
                from_rate: st.from_rate_per_sec,
                to_rate: st.rate_per_sec,
                duration_s,
            };
            t += s.duration_s;
            n += s.count();
            segments.push(s);
        }
        Timetable { segments }
    }

    /// Offset from the run's start at which request `n` is due; `None` past the end.
    pub fn offset(&self, n: u64) -> Option<Duration> {
        let n = n as f64;
        let seg = self.segments.iter().rev().find(|s| s.start_n <= n)?;
        if n >= seg.start_n + seg.count() {
            return None;
        }
        let t = seg.start_s + seg.time_of(n - seg.start_n);
        (t.is_finite() && t >= 0.0).then(|| Duration::from_secs_f64(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_spaces_requests_evenly() {
        let st = [RateStage { from_rate_per_sec: 100.0, rate_per_sec: 100.0, duration: Duration::from_secs(2) }];
        let tt = Timetable::new(Duration::from_secs(1), &st, false);
        assert_eq!(tt.offset(0), Some(Duration::ZERO));
        assert_eq!(tt.offset(150).map(|d| d.as_millis()), Some(1500));
        assert_eq!(tt.offset(300), None);
    }

    #[test]
    fn ramp_ends_on_time() {
        let st = [RateStage { from_rate_per_sec: 0.0, rate_per_sec: 200.0, duration: Duration::from_secs(2) }];
        let tt = Timetable::new(Duration::ZERO, &st, false);
        // 200 requests in total; the 50th is due at sqrt(2*2*50/200) = 1 s.
        assert_eq!(tt.offset(50).map(|d| d.as_millis()), Some(1000));
        assert!(tt.offset(199).is_some());
        assert!(tt.offset(200).is_none());
    }
}
