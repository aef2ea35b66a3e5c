"""CloudWatch alarms that are evaluated: moto stores alarms and metric data, this package decides their state.

``evaluation`` is the pure math (periods, statistics, M out of N, TreatMissingData, CloudWatch's reason text);
``alarms`` is the loop that applies it to every metric alarm moto holds; ``history`` serves DescribeAlarmHistory.
"""
