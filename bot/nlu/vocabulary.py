"""The words and patterns the intent rules read (bot/nlu/intents.py): visit verbs and their markers, arrival,
moves, commands, contacts, fillers. Data, no logic."""

from __future__ import annotations

import re

from bot.nlu.numerals import DIGITS, NUMERAL_CHARS

# ---------------------------------------------------------------- vocabulary (token level)

# Visit verbs, and tokens that already say the visit is over.
VISIT_VERBS = frozenset({
    "拜访", "见", "见了", "面谈", "走访", "上门", "见面", "会面", "拜会", "会谈", "洽谈", "面见", "约见",
    "回访", "出访", "visit", "visiting", "visited", "met", "meet", "meeting", "聊", "聊了", "谈", "谈了", "去",
})
# English puts the completion first: "done visiting acme", "finished the visit".
LEADING_DONE_WORDS = frozenset({"done", "finished", "completed"})
ENGLISH_VISIT_VERBS = frozenset({"visit", "visiting", "meeting"})
VISIT_DONE_WORDS = frozenset({
    "拜访完成", "拜访完", "拜访结束", "见完", "聊完", "谈完", "面谈完", "拜访完毕", "访完", "见过", "见完面", "碰完面",
    "拜访记录", "拜访小结", "拜访总结", "拜访反馈",
})
# "拜访华远科技，1h，王总对方案满意": a visit verb and a duration report a visit even without 完成 — unless
# the words around say it is still to come ("明天拜访华远 1小时") or ask something.
REPORT_VERBS = frozenset({"拜访", "走访", "面谈", "会面", "拜会", "回访", "上门", "洽谈", "会谈", "面见"})
REPORT_NOUNS = frozenset({"记录", "小结", "总结", "反馈", "情况", "汇报"})
FUTURE_RE = re.compile(
    r"明天|明日|后天|下周|下个?星期|下个?礼拜|下个?月|月底|周[一二三四五六日天末]|星期|礼拜|\d+\s*[号日]|准备|计划|打算|安排"
    r"|将要|即将|要去|想去|约了|预约|待会|等会|一会|稍后|回头|下次|改天|再去"
)
# Tokens that still belong to the visit words after them: "见完面了", "拜访完成啦".
TRIGGER_TAIL = frozenset({"了", "啦", "面", "面了"})
DONE_MARKERS = frozenset({"完成", "完", "完了", "结束", "完毕", "好了", "done", "finished", "回来", "出来", "过"})
# "拜访了", "见了": a strong visit verb with 了 right after it is a past visit.
PAST_PARTICLES = frozenset({"了", "过了"})
# Verb and completion glued in one token jieba does not know ("见完华" cut as 见/完华): read by characters.
# 见 inside 意见/看见/再见 … is not a visit ("客户意见完全一致").
GLUED_DONE_RE = re.compile(
    r"(?:拜访|(?<![意看听遇可预常偏高罕少再起只瞧梦主成政短拙浅卓远创所不未易])见|面谈|走访|会面|见面|拜会|洽谈|聊|谈)"
    r"(?:完成|完毕|完了|结束|过了|完)(?:面了?)?|碰(?:了个?|完|过)面了?"
)
RECENT_MARKERS = frozenset({"刚", "刚刚", "刚才", "已", "已经", "今天", "今日", "上午", "下午", "中午", "晚上"})
# "聊"/"谈"/"去" alone are too common: they count only with a marker right after them.
WEAK_VERBS = frozenset({"聊", "聊了", "谈", "谈了", "去"})
ARRIVE_RE = re.compile(
    r"^\s*(?:我)?(?:已经|已)?(?:到达|抵达|已到|签到|arrived(?:\s+at)?|check\s*in|(?P<weak>到了|到))\s*[:：]?\s*"
)
ARRIVE_TAIL_RE = re.compile(r"(?:我)?(?:已经)?(?:到了|已到|到达了?|签到)\s*$")
# "去了趟宏达零售", "跑了一趟华远", "从华远出来": a visit only when a known customer is named right there.
WENT_RE = re.compile(r"(?:去|跑)(?:了\s*(?:一\s*)?趟?|\s*(?:一\s*)?趟)\s*")
CAME_OUT_RE = re.compile(r"从\s*(?P<place>[^\s,，。;；]{2,30}?)\s*(?:那边|那儿|这边)?\s*(?:出来|回来|离开)")
# A question or a failure is not a statement: "到华远还要多久", "签到失败了", "纪要怎么写", "周会几点开".
QUESTION_RE = re.compile(r"[?？]|吗|多久|多远|怎么|几点|哪里|在哪|什么|为什么|如何|是不是|能不能|失败|没到|不到|还没")
NOT_YET_RE = re.compile(r"(?:快|快要|马上|就要|即将)\s*$")
QUESTION_LEAD_RE = re.compile(r"\s*(?:怎么|如何|几点|什么|啥|在哪|哪|要不要|能不能|是不是|可以吗|吗|呢|[?？])")
MOVE_EN_RE = re.compile(r"\b(?:move|advance|push)\s+(?P<what>\S.*?)\s+(?:to|into)\s+")
MOVE_RE = re.compile(
    r"(?:进入|推进到|推进至|推到|推进|转入|进到|进阶到|升级到|转到|移到|移入|改到|改为|调到|推至|进|到了|到"
    r"|move\s+to|advance\s+to|->|→|=>)\s*"
)
NEXT_STAGE_RE = re.compile(r"下一(?:个)?阶段|下个阶段|next\s+stage")
FORCE_RE = re.compile(r"^\s*(?:强制推进|强制进入|强制转入|强推|强制|force(?:\s+move)?)\s*[:：,，]?\s*")
NOTE_RE = re.compile(
    r"^\s*(?:今天的?|今日)?(?:会议纪要|拜访纪要|纪要|会议记录|记录一下|记一下|记录|备忘|笔记|小结"
    r"|meeting\s+notes?|notes?)\s*[:：,，-]?\s*"
)
STANDUP_RE = re.compile(r"^\s*(?:周会|站会|周例会|例会|本周卡点|stand\s*-?\s*up)\s*[:：,，-]?\s*")
CONFIRM_RE = re.compile(
    r"^\s*(?:签字确认|确认签字|已确认|确认|签字|sign\s*-?\s*off|confirm)\s*(?:一下)?\s*[:：,，]?\s*"
)
# What a key action is called when it is not one of the configured names: a document or a recorded step.
ACTION_NOUN_RE = re.compile(r"(?:报告|页|单|表|书|记录|提交|归档|文档|文件|方案|清单|确认|纪要|合同|协议|函)$")
PIPELINE_RE = re.compile(
    r"^\s*(?:看看|看下|看一下|查看|查一下|查下|查查|列出|列一下|给我看看|show)?\s*(?:我的|我|my\s)\s*(?:所有|全部)?\s*"
    r"(?:商机|项目|漏斗|pipeline)(?:列表|情况|进展)?\s*(?:都?有哪些|有什么|怎么样了?)?\s*[?？!！。.]*\s*$"
    r"|^\s*(?:商机列表|我有哪些商机|my\s+pipeline|pipeline)\s*[?？!！。.]*\s*$"
)
REASON_RE = re.compile(r"(?:原因|理由|因为|reason)\s*[:：,，]?\s*")
_TITLED = r"[^\W\d的和跟与同及是个a-z](?:总监|总经理|总|经理|主任|局长|处长|部长|科长|董事长|董|工|老师|博士|主管)"
CONTACT_RE = re.compile(
    rf"(?:的|和|跟|与|同)?\s*(?P<who>{_TITLED})"
    # a role without a surname counts after 的: "宏达零售的店长", "德胜的老板"
    r"|的\s*(?P<role>店长|老板|老总|负责人|总经理|董事长|采购|ceo|cto|cio|cfo)(?![a-z])"
)
# More people met: "王总和李经理", "王总、李经理".
MAX_CONTACTS = 5  # the contact slot stays short (activities.contact holds 64 characters)
MORE_CONTACTS_RE = re.compile(rf"\s*(?:和|跟|与|及|、)\s*(?P<who>{_TITLED})")
# A leftover piece made only of these says nothing: it is not part of the conclusion.
FILLER_PIECE_RE = re.compile(
    r"(?:今天|今日|刚刚|刚才|刚|去了|去|了|啦|聊了|聊|时长|用时|共计|共|约|大概|左右|在|和|跟|与|的|到|过|客户了|客户"
    r"|一下|那边|客户处|待了|呆了|小时|分钟|将近|差不多|大约|接近|today|just)+"
)
# A field label reps copy from a template ("结论：客户认可", "备注: …"): not part of the text.
LABEL_RE = re.compile(r"^(?:结论|总结|结果|小结|备注|情况|进展|内容|反馈|conclusion|summary|notes?)\s*[:：]\s*", re.I)
ELLIPSES = "…⋯"
# The words for today describe the visit itself, not a next step ("今天拜访了华远", "今天去了星辰").
TODAY_WORDS = frozenset({"今天", "今日"})
# Clause ends for a next step: punctuation, but not the comma inside "50,000".
CLAUSE_SEP_RE = re.compile(r"[，。;；！!？?\n]|(?<!\d),|,(?!\d{3}(?!\d))")
BIG_NUMERAL_RE = re.compile(rf"[{NUMERAL_CHARS}]*[{''.join(DIGITS)}][{NUMERAL_CHARS}]*")
LEADING_TIME_RE = re.compile(r"(?:今天|今日|刚刚|刚才|刚|已经|已|上午|下午|中午|晚上)\s*$")
