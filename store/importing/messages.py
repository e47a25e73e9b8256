"""Every user-facing import message, in one place (Chinese, like the rest of the bot's replies).

A message names the column it is about through RowError.column; the templates below say what is
wrong with the value and, where it helps, what a good value looks like.
"""

from __future__ import annotations

# ---------------------------------------------------------------- file and header
FILE_NOT_FOUND = "文件不存在: {path}"
FILE_UNREADABLE = "无法读取文件: {reason}"
NOT_UTF8 = "第 {line} 行不是 UTF-8 编码 (Excel 请另存为 “CSV UTF-8(逗号分隔)”)"
UTF16 = "文件是 UTF-16 编码 (Excel “Unicode 文本”); 请另存为 “CSV UTF-8(逗号分隔)”"
EMPTY_FILE = "文件为空: 缺少表头行"
UNKNOWN_KIND = "未知的导入类型 {kind} (可用: {known})"
UNKNOWN_COLUMNS = "未知列: {columns} (可用列: {known})"
DUPLICATE_COLUMN = "表头中列 {column} 重复"
EMPTY_HEADER = "表头第 {index} 列没有列名"
MISSING_COLUMNS = "缺少必填列: {columns}"
CSV_SYNTAX = "CSV 格式错误: {reason}; 从此行起未读取"
TOO_MANY_FIELDS = "本行有 {count} 个字段, 表头只有 {header} 列"

# ---------------------------------------------------------------- row shape
NOT_AN_OBJECT = "每一项必须是 JSON 对象"
UNKNOWN_FIELD = "未知字段 (可用字段: {known})"
REQUIRED = "必填, 不能为空"
DUPLICATE_ROW = "external_id {value} 与第 {first} 行重复"

# ---------------------------------------------------------------- values
NOT_TEXT = "应为文本"
CONTROL_CHAR = "含有不允许的控制字符 {char}"
TOO_LONG = "太长: {length} 个字符, 最多 {max} 个"
BAD_FORMAT = "格式不正确: {value}"
NOT_INT = "应为整数: {value}"
INT_RANGE = "应在 {min} 到 {max} 之间: {value}"
NOT_AMOUNT = "不是有效金额: {value} (例: 50000 或 50,000.00)"
AMOUNT_DECIMALS = "金额最多两位小数: {value}"
AMOUNT_TOO_LARGE = "金额过大: {value}"
AMOUNT_NEGATIVE = "金额不能为负数: {value}"
AMOUNT_ZERO = "金额不能为 0"
NOT_DATETIME = "不是有效的 ISO 8601 时间: {value} (例: 2026-11-30 10:00 或 2026-11-30T10:00:00+08:00)"
DATETIME_RANGE = "时间超出合理范围 (1990–2100): {value}"
NOT_CHOICE = "{value} 不是可选值之一: {choices}"
NOT_BOOL = "应为 true/false (是/否): {value}"
NOT_LIST = "应为文本列表 (用 ; 分隔)"
TOO_MANY_ITEMS = "最多 {max} 项"

# ---------------------------------------------------------------- references
UNKNOWN_USER = "用户 {value} 不存在 (用 external_id)"
UNKNOWN_CUSTOMER = "客户 {value} 不存在 (用 external_id)"
UNKNOWN_OPPORTUNITY = "商机 {value} 不存在 (用 external_id)"
UNKNOWN_CONTRACT = "合同 {value} 不存在 (用 external_id)"
UNKNOWN_ORG = "组织 {value} 不存在 (用外部编号, 或 “区域/团队” 路径以自动创建)"
AMBIGUOUS_ORG = "组织名 {value} 不唯一, 请用 “区域/团队” 路径或外部编号"
BAD_ORG_PATH = "组织路径应为 “区域/团队”: {value}"
NOT_A_REGION = "{value} 是团队, 不是区域"
SELF_SUPERIOR = "不能是自己的上级"
SUPERIOR_CYCLE = "上级关系形成循环"
SUPERIOR_FAILED = "上级 {value} 的那一行没有导入成功"
ID_TAKEN = "{value} 已被用户 {other} 使用"
ID_TAKEN_IN_FILE = "{value} 与第 {first} 行重复"
MANAGES_TAKEN_IN_FILE = "{value} 已由第 {first} 行的用户负责"
OPP_OTHER_CUSTOMER = "商机 {value} 属于另一个客户"

# ---------------------------------------------------------------- consistency
BEFORE_CREATED = "不能早于 created_at"
ASSIGNED_WITHOUT_ASSIGNEE = "有分配时间但没有 assignee"
CLOSED_NOT_CLOSED = "只有 status 为 won/lost 时才能填写"
SIGNED_NEEDS_DATE = "status 为 signed 时必填"

# ---------------------------------------------------------------- database
DB_ERROR = "写入数据库失败: {reason}"

# ---------------------------------------------------------------- report (format_report)
REPORT_HEAD = "导入 {kind}: 共 {total} 行, 新建 {created}, 更新 {updated}, 未变 {unchanged}, 失败 {failed}"
REPORT_DRY_RUN = " (试运行, 未写入)"
REPORT_ABORTED = "未导入任何数据:"
REPORT_ORG_CREATED = "新建组织: {count} 个"
REPORT_LINE = "第 {line} 行"
REPORT_FILE = "文件"
REPORT_MORE = "… 另有 {count} 条错误未列出"
