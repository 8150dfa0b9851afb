"""The team's worklist (随访工作单): due, overdue and lost-to-follow-up patients with their open alerts —
``service`` builds the page, ``repository`` holds its queries."""
