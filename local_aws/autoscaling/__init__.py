"""Application Auto Scaling that really scales SageMaker variants (moto only records targets and policies).

``target_tracking`` is the pure decision (the policy's high and low alarms, cooldowns, bounds, suspension);
``scaler`` is the loop that reads moto's targets and policies and the metric data, and resizes an endpoint with
UpdateEndpointWeightsAndCapacities through the local edge, as Application Auto Scaling does; ``activities`` keeps
the scaling activities and serves DescribeScalingActivities.
"""
