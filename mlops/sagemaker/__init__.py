"""The SageMaker backend: pipeline runs, the SageMaker Model Registry, CloudFormation deploys.
boto3 is imported lazily; the SageMaker SDK only by pipeline_definition.py (when rendering)."""
