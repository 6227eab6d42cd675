"""The demo's content: the parks, the enterprises and their sectors, the planned colour mix of
the boxes, the demo users.

Kept whole on purpose: it is a data table (names as the plan gives them), not logic.
"""

from __future__ import annotations

from typing import Any

from app.accounts.reference import TAIZHOU_COUNTIES

# ---------------------------------------------------------------- the content

# key, name, county, park administration (names as in the plan where it names one)
PARKS = (
    ("toumen", "台州湾经济技术开发区医化园区", "331082", "台州湾经济技术开发区管委会"),
    ("tiantai", "天台县经济开发区", "331023", "天台县经济开发区管委会"),
    ("wenling", "温岭市东部产业集聚区", "331081", "温岭市东部产业集聚区管委会"),
    ("yantou", "椒江外沙岩头医化园区", "331002", "椒江区外沙岩头医化园区管理办公室"),
    ("jiangkou", "黄岩江口医化园区", "331003", "黄岩江口医化园区管理委员会"),
    ("luqiao", "路桥金属资源再生产业基地", "331004", "浙江路桥经济开发区管委会"),
    ("ganjiang", "玉环干江滨港工业城", "331083", "玉环市干江镇人民政府"),
    ("sanmen", "三门县沿海工业城", "331022", "三门县沿海工业城发展服务中心"),
    ("xianju", "仙居县医疗器械小镇", "331024", "仙居县经济开发区管委会"),
)

# Enterprises (产废单位): name, county, park key or None, sector. Fictional names.
ENTERPRISES = (
    ("天台县恒力橡胶制品有限公司", "331023", "tiantai", "橡胶"),
    ("浙江天台三和橡塑有限公司", "331023", "tiantai", "橡胶"),
    ("天台县赤城汽车用品有限公司", "331023", "tiantai", "汽摩配"),
    ("天台县始丰滤材科技有限公司", "331023", "tiantai", "化纤滤料"),
    ("台州天盛车饰有限公司", "331023", "tiantai", "涂装"),
    ("天台县国清胶带有限公司", "331023", None, "橡胶"),
    ("浙江华顶医药化工有限公司", "331023", "tiantai", "医化"),
    ("天台县平桥印务有限公司", "331023", None, "印刷"),
    ("浙江头门港制药有限公司", "331082", "toumen", "医化"),
    ("临海市东海精细化工有限公司", "331082", "toumen", "医化"),
    ("浙江临港药业有限公司", "331082", "toumen", "医化"),
    ("台州湾润和化学有限公司", "331082", "toumen", "医化"),
    ("临海市杜桥光学眼镜有限公司", "331082", None, "涂装"),
    ("临海市括苍家具有限公司", "331082", None, "家具"),
    ("台州市岩头化工有限公司", "331002", "yantou", "医化"),
    ("浙江外沙药业有限公司", "331002", "yantou", "医化"),
    ("台州市椒江海门包装印刷有限公司", "331002", None, "印刷"),
    ("台州市椒江精缝机械有限公司", "331002", None, "涂装"),
    ("台州市黄岩江口化工有限公司", "331003", "jiangkou", "医化"),
    ("浙江黄岩永丰制药有限公司", "331003", "jiangkou", "医化"),
    ("台州市黄岩精艺模塑有限公司", "331003", None, "涂装"),
    ("台州市黄岩西城家具有限公司", "331003", None, "家具"),
    ("台州市路桥金泰再生金属有限公司", "331004", "luqiao", "涂装"),
    ("台州市路桥峰江汽配有限公司", "331004", "luqiao", "汽摩配"),
    ("台州市路桥横街五金制品有限公司", "331004", None, "涂装"),
    ("温岭市东海塑胶鞋业有限公司", "331081", "wenling", "鞋业"),
    ("温岭市泽国鞋业有限公司", "331081", None, "鞋业"),
    ("浙江温岭松门船舶修造有限公司", "331081", "wenling", "涂装"),
    ("温岭市大溪水泵有限公司", "331081", None, "涂装"),
    ("温岭市箬横汽车配件有限公司", "331081", "wenling", "汽摩配"),
    ("玉环市干江阀门有限公司", "331083", "ganjiang", "涂装"),
    ("玉环市楚门汽摩配件有限公司", "331083", "ganjiang", "汽摩配"),
    ("玉环市坎门家具有限公司", "331083", None, "家具"),
    ("三门县海游橡胶有限公司", "331022", "sanmen", "橡胶"),
    ("浙江三门沿海橡塑科技有限公司", "331022", "sanmen", "橡胶"),
    ("仙居县永安制药有限公司", "331024", "xianju", "医化"),
    ("仙居县白塔工艺品有限公司", "331024", None, "涂装"),
    ("浙江仙居康源医疗器械有限公司", "331024", "xianju", "医化"),
)

# Per sector: box weight (医化 plants have many boxes), workshops, emission limit (mg/m³ NMHC),
# hours per day options.
SECTORS: dict[str, dict[str, Any]] = {
    "医化": {
        "weight": 3.0,
        "workshops": ("合成车间", "精烘包车间", "溶剂回收车间", "危废仓库", "污水站"),
        "limit": 60.0,
        "hours": (24, 24, 20, 16),
    },
    "橡胶": {"weight": 1.5, "workshops": ("炼胶车间", "硫化车间", "压延车间"), "limit": 10.0, "hours": (16, 20, 24)},
    "汽摩配": {"weight": 1.3, "workshops": ("喷涂线", "电泳线", "注塑车间"), "limit": 60.0, "hours": (8, 10, 12, 16)},
    "涂装": {"weight": 1.2, "workshops": ("喷漆房", "烘干房", "调漆间"), "limit": 60.0, "hours": (8, 10, 12, 16)},
    "印刷": {"weight": 1.0, "workshops": ("印刷车间", "复合车间", "调墨间"), "limit": 50.0, "hours": (10, 12, 16)},
    "鞋业": {"weight": 1.0, "workshops": ("刷胶线", "成型车间", "喷光线"), "limit": 40.0, "hours": (8, 10, 12)},
    "家具": {"weight": 0.8, "workshops": ("喷漆房", "打磨房", "干燥房"), "limit": 60.0, "hours": (8, 10)},
    "化纤滤料": {"weight": 0.8, "workshops": ("定型车间", "浸渍车间"), "limit": 60.0, "hours": (16, 24)},
}

COUNTY_SHORT = {code: name[:-1] for code, name, _ in TAIZHOU_COUNTIES}  # 天台县 → 天台

VIRGIN_SUPPLIER = "山西晋阳活性炭有限公司"  # fictional; new (non-regenerated) coal-based carbon

# Planned state "today" for each box; the fill history is built backwards from it. "…_first": a
# newly commissioned box, its first carbon still in.
TARGET_WEIGHTS = (
    ("green", 0.30),
    ("green_first", 0.12),
    ("yellow", 0.15),
    ("yellow_first", 0.05),
    ("red_overdue", 0.15),
    ("red_iodine", 0.05),
    ("grey_new", 0.05),
    ("grey_stopped", 0.07),
    ("grey_decommissioned", 0.06),
)
# The enterprise whose staff log in (`qiye`): one box in each state.
SHOWCASE_TARGETS = (
    "green",
    "yellow",
    "red_overdue",
    "red_iodine",
    "grey_new",
    "green_first",
    "grey_stopped",
    "yellow_first",
)


USERS = (
    # username, organisation key, user role, role (zh, en)
    ("qiye", "enterprise:0", "admin", "企业管理员", "enterprise admin"),
    ("qiye2", "enterprise:0", "staff", "企业员工", "enterprise staff"),
    ("huanta", "service", "staff", "换炭服务", "carbon service"),
    ("zaisheng", "regen_tiantai", "admin", "再生单位 / 接受人", "regeneration plant / receiver"),
    ("yunshu", "carrier", "staff", "承运人", "carrier"),
    ("tiantai", "regulator:331023", "staff", "天台分局监管", "Tiantai regulator"),
    ("shiju", "regulator:city", "staff", "市生态环境局监管", "city regulator"),
    ("yuanqu", "park_admin:tiantai", "staff", "园区管委会", "park administration"),
)
