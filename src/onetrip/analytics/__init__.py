"""Indicators (指标), the cockpit (驾驶舱) and self-filling report forms (issue 8). See docs/cockpit.md."""
