"""At run time: the scheduler picks a device's configuration for a frame rate from its profile
(`plan`, `plans_table`), and the online controller adjusts it to measured frame times (`Controller`)."""

from hpv.runtime.controller import Controller, ControllerSettings, Switch
from hpv.runtime.scheduler import Plan, describe, ladder, max_fps, plan, plans_table
from hpv.runtime.table import ConfigRecord, Row, ScheduleTable, load_table

__all__ = ["ConfigRecord", "Controller", "ControllerSettings", "Plan", "Row", "ScheduleTable", "Switch",
           "describe", "ladder", "load_table", "max_fps", "plan", "plans_table"]
