"""The security suite: every probe from the attack review (issue 26) and the earlier list, each with the test
that shows it holds and the 等保 2.0 level-3 control (GB/T 22239-2019) it serves.

Everything under tests/security/ belongs to the suite; the tests listed here from other folders (they were
written with their capability) are marked ``security`` too (tests/conftest.py), so

    .venv/bin/pytest -m security

runs the whole suite, and the default run (CI) includes it. docs/security.md's checklist is this table in
words; tests/security/test_catalogue.py keeps the two and the test files in step.
"""

from __future__ import annotations

from typing import NamedTuple


class Probe(NamedTuple):
    key: str  # short id, used in docs/security.md's checklist
    control: str  # 等保 2.0 control (or the privacy rule) the probe shows
    test: str  # pytest node id without parameters: path::function


PROBES: tuple[Probe, ...] = (
    # ── this review's findings (issue 26) ──────────────────────────────────────────────────────────────
    Probe("body-limit", "入侵防范 / resource control: request size",
          "tests/security/test_limits.py::test_declared_length_over_the_limit_is_refused_unread"),
    Probe("auth-before-body", "身份鉴别 / authentication before processing",
          "tests/security/test_limits.py::test_no_credentials_is_401_before_the_body_is_read"),
    Probe("mllp-connections", "入侵防范 / resource control: connections",
          "tests/security/test_mllp_limits.py::test_connection_cap_per_address_and_in_total"),
    Probe("mllp-idle", "入侵防范 / resource control: idle connections",
          "tests/security/test_mllp_limits.py::test_idle_half_frames_are_closed_and_their_memory_freed"),
    Probe("mllp-frame", "入侵防范 / resource control: message size",
          "tests/security/test_mllp_limits.py::test_oversize_frame_gets_ar_nothing_stored_and_the_next_message_works"),
    Probe("mllp-linear", "入侵防范 / resource control: linear-time framing",
          "tests/security/test_mllp_limits.py::test_large_message_in_small_chunks_is_framed_in_linear_time"),
    Probe("audit-rechain", "安全审计 / audit records protected from change",
          "tests/security/test_audit_tamper.py::test_an_edit_rechained_with_the_unkeyed_function_is_found"),
    Probe("audit-truncate", "安全审计 / audit records protected from deletion",
          "tests/security/test_audit_tamper.py::test_removed_newest_rows_with_the_head_fixed_are_found_against_the_checkpoint"),
    Probe("audit-swap", "安全审计 / audit records protected: restored older database",
          "tests/security/test_audit_tamper.py::test_an_older_copy_of_the_database_is_found"),
    Probe("audit-retention", "安全审计 / audit kept ≥ 6 months",
          "tests/security/test_audit_tamper.py::test_archive_refuses_a_cutoff_inside_the_retention"),
    Probe("signin-throttle", "身份鉴别 / login failure handling",
          "tests/security/test_signin.py::test_an_address_gets_429_with_retry_after_after_repeated_failures"),
    Probe("signin-lockout-abuse", "身份鉴别 / login failure handling without denial of service",
          "tests/security/test_signin.py::test_a_strangers_failures_do_not_lock_the_admin_out_of_their_own_address"),
    Probe("signin-enumeration", "身份鉴别 / no user enumeration",
          "tests/security/test_signin.py::test_unknown_user_wrong_password_and_locked_account_get_identical_answers"),
    Probe("password-denylist", "身份鉴别 / password complexity",
          "tests/security/test_signin.py::test_common_and_guessable_passwords_are_refused"),
    Probe("totp", "身份鉴别 / two factors for privileged users",
          "tests/security/test_signin.py::test_admin_needs_a_code_a_wrong_one_is_refused_and_a_used_one_cannot_be_replayed"),
    Probe("password-rotation", "身份鉴别 / password rotation",
          "tests/security/test_signin.py::test_an_expired_password_is_refused_at_the_token_endpoint_and_changed_on_the_web"),
    Probe("write-scopes", "访问控制 / least privilege",
          "tests/security/test_write_scopes.py::test_every_write_needs_a_write_scope"),
    Probe("hl7-control-id-reuse", "数据完整性 / nothing silently dropped",
          "tests/hl7v2/test_control_id_reuse.py::test_reused_control_id_is_refused_kept_and_can_be_applied"),
    Probe("search-params", "入侵防范 / input validation on every interface",
          "tests/security/test_search_params.py::test_offset_out_of_range_or_not_digits_is_400"),
    Probe("search-date", "入侵防范 / input validation: dates",
          "tests/security/test_search_params.py::test_observation_date_garbage_is_400_and_a_good_date_is_200"),
    Probe("chunked-limit", "入侵防范 / resource control: streamed bodies",
          "tests/security/test_limits.py::test_chunked_body_is_counted_and_stopped_at_the_limit"),
    Probe("report-scope", "访问控制 / a read scope cannot regenerate reports",
          "tests/security/test_write_scopes.py::test_report_generation_needs_a_write_scope_and_a_manager"),
    Probe("openapi-private", "访问控制 / API description for admins only in production",
          "tests/security/test_no_store.py::test_openapi_for_admins_only_in_production"),
    Probe("method-405", "入侵防范 / unserved methods answered 405",
          "tests/security/test_openapi_conformance.py::test_unserved_method_is_405_with_allow"),
    Probe("audit-checkpoint-tamper", "安全审计 / the external anchor is itself tamper-evident",
          "tests/security/test_audit_tamper.py::test_a_tampered_checkpoint_file_is_found"),
    Probe("no-store", "个人信息保护 / personal data not cached",
          "tests/security/test_no_store.py::test_fhir_read_and_api_json_are_no_store"),
    Probe("openapi-conformance", "入侵防范 / every interface answers as declared",
          "tests/security/test_openapi_conformance.py::test_openapi_conformance_all_checks"),
    # ── the earlier list ───────────────────────────────────────────────────────────────────────────────
    Probe("slot-race", "数据完整性 / concurrent writers never double-book",
          "tests/scheduling/test_concurrency.py::test_fifty_clients_race_for_the_last_place"),
    Probe("kill9-mllp", "数据完整性 / store before acknowledging",
          "tests/hl7v2/test_kill9.py::test_kill_9_mid_stream_then_resend_leaves_one_copy_each"),
    Probe("duplicate-msh10", "数据完整性 / a duplicate is answered, not applied twice",
          "tests/hl7v2/test_mllp.py::test_duplicate_gets_the_same_ack_and_one_row"),
    Probe("if-match", "数据完整性 / no lost update",
          "tests/identity/test_linking.py::test_concurrent_updates_with_the_same_version_lose_nothing"),
    Probe("outbox-crash", "数据完整性 / events survive a crash",
          "tests/notify/test_kill9.py::test_kill_9_between_commit_and_delivery_then_restart_delivers_everything"),
    Probe("partial-write", "数据完整性 / a failure half-way writes nothing",
          "tests/db/test_changes.py::test_a_failure_half_way_leaves_no_partial_write"),
    Probe("cross-institution", "访问控制 / cross-institution read denied and audited",
          "tests/access/test_cross_institution.py::test_denied_then_break_the_glass"),
    Probe("break-glass-reason", "访问控制 / break-the-glass needs a reason",
          "tests/access/test_cross_institution.py::test_break_the_glass_needs_a_reason"),
    Probe("consent-truth-table", "个人信息保护 / consent",
          "tests/access/test_policy.py::test_consent_truth_table"),
    Probe("forged-token", "身份鉴别 / forged and expired tokens",
          "tests/auth/test_auth.py::test_expired_and_forged_tokens_get_401"),
    Probe("idle-timeout", "身份鉴别 / idle timeout",
          "tests/auth/test_auth.py::test_idle_session_times_out"),
    Probe("masking-rules", "个人信息保护 / masking patterns",
          "tests/kit/test_identifiers.py::test_masking_patterns_from_rules_section_10"),
    Probe("masking-ui", "个人信息保护 / masking in lists",
          "tests/web/test_web_pages.py::test_search_by_chinese_name_masks_the_id"),
    Probe("masking-export", "个人信息保护 / masking in exports",
          "tests/family/test_worklist.py::test_worklist_buckets_order_and_export"),
    Probe("masking-logs", "个人信息保护 / masking in logs",
          "tests/db/test_fastpath.py::test_logged_only_with_log_sql_and_masked"),
    Probe("backup-restore", "数据备份恢复 / backup and restore with integrity check",
          "tests/cli/test_backup.py::test_backup_under_write_load_restores_with_counts_and_an_intact_audit_chain"),
    Probe("backup-checksum", "数据备份恢复 / a corrupted backup is refused",
          "tests/cli/test_backup.py::test_a_corrupted_dump_is_refused_by_its_checksum"),
)

OUTSIDE = sorted({p.test.split("::")[0] + "::" + p.test.split("::")[1] for p in PROBES
                  if not p.test.startswith("tests/security/")})
