"""The shipped defaults that are data, not single values: the source's funnel, its 7 gates, the words
reps use for stages, and the R13 industry baselines and talk-track packs (every one overridable in the
config file; see config.example.toml); and which environment variables may carry secrets."""

from __future__ import annotations

DEFAULT_STAGES = ("线索", "触达", "需求诊断", "方案呈现", "异议处理", "签约", "回款", "复购")
# R6: the key actions (attachment + owner's sign-off) needed to *enter* each stage: 7 gates.
DEFAULT_GATES: dict[str, tuple[str, ...]] = {
    "触达": ("首次联系记录",),
    "需求诊断": ("首次需求确认",),
    "方案呈现": ("需求调研报告", "客户签字页"),
    "异议处理": ("竞品分析提交",),
    "签约": ("POC测试报告归档",),
    "回款": ("合同签字页",),
    "复购": ("回款确认单",),
}
# R6: words reps use for a stage -> the configured stage name ("华远 进入 报价" → 方案呈现).
DEFAULT_STAGE_ALIASES: dict[str, str] = {
    "报价": "方案呈现",
    "方案": "方案呈现",
    "演示": "方案呈现",
    "需求": "需求诊断",
    "诊断": "需求诊断",
    "谈判": "异议处理",
    "商务谈判": "异议处理",
    "签单": "签约",
    "签合同": "签约",
    "成交": "签约",
    "收款": "回款",
}

DEFAULT_DEPTH_BASELINES: dict[str, dict[str, float]] = {
    # R13: an industry's ordinary week with one customer (wechat messages, note characters, documents).
    "default": {"wechat": 30.0, "note_chars": 600.0, "docs": 2.0},
    "IT服务": {"wechat": 30.0, "note_chars": 800.0, "docs": 3.0},
    "零售门店": {"wechat": 40.0, "note_chars": 400.0, "docs": 2.0},
}
DEFAULT_TALK_TRACKS: dict[str, str] = {
    # R13: the talk-track pack (话术包) pushed to an owner whose customer's contact runs shallow: text or a URL.
    "default": "通用话术包：①先确认客户本周最关心的一件事 ②用一个同行案例回应 ③约定下一步的时间和负责人",
    "IT服务": "IT服务话术包：①问清现有系统和对接痛点 ②用同行上线周期和ROI案例回应 ③约技术交流或POC，发需求调研模板",
    "零售门店": "零售门店话术包：①问门店数、客流和收银高峰 ②用同类连锁的坪效提升案例回应 ③约门店实地走访，发试点方案",
}

# Secrets may come from the environment instead of the file (checked after the file is read).
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "SALESBOT_DATABASE_URL": ("database", "url"),
    "SALESBOT_WECOM_CORP_ID": ("wecom", "corp_id"),
    "SALESBOT_WECOM_AGENT_ID": ("wecom", "agent_id"),
    "SALESBOT_WECOM_SECRET": ("wecom", "secret"),
    "SALESBOT_WECOM_TOKEN": ("wecom", "token"),
    "SALESBOT_WECOM_ENCODING_AES_KEY": ("wecom", "encoding_aes_key"),
    "SALESBOT_WECOM_API_BASE": ("wecom", "api_base"),
    "SALESBOT_API_TOKEN": ("api", "token"),
}
