"""Two-way referral (双向转诊) between the lead hospital and its branches (issue 6)."""
