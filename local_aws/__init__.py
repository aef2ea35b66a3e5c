"""Local AWS: the services the pipeline uses, emulated on one machine, answering boto3 and the awscli as AWS does.

Layering (imports only point down this list; nothing here imports ``ops``):

- ``server``: ``LocalAws``, every service below in one process, plus ``deploy`` (template.yaml through the APIs);
- ``edge``: the one AWS endpoint: SigV4 check (``auth``), then dispatch by signing name to
  ``sagemaker`` (control plane, runtime, training hosts, endpoint instances), ``s3`` (objects on disk),
  ``stepfunctions`` (moto's interpreter and service, with fixes and records), ``logs`` (CloudWatch Logs on disk),
  ``cloudformation`` (the one template resolver; DescribeStacks of the local stack), ``sts`` and, for every other
  service (IAM, CloudWatch, SNS, Application Auto Scaling, ...), ``moto_services``;
- ``apigateway`` + ``lambda_runtime``: the REST API from the template in front of the real handler;
- ``http``: the one HTTP server every port runs on (waitress); ``processes``: children that die with the runtime;
- ``constants``: account, region, paths, limits, the metric format.
"""
