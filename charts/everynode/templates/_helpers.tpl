{{/* The chart's name, or nameOverride. */}}
{{- define "everynode.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Object names: fullnameOverride; else the release name when it contains the name (release "everynode"
gives "everynode"), else <release>-<name>. Truncated to 63 characters (a DNS label).
*/}}
{{- define "everynode.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "everynode.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* helm.sh/chart: <chart>-<version>, "+" replaced (not allowed in a label value). */}}
{{- define "everynode.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The image tag: image.tag, or the chart's appVersion when it is empty. */}}
{{- define "everynode.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{/* The pods' selector: name and instance only (a Deployment's selector cannot change). */}}
{{- define "everynode.selectorLabels" -}}
app.kubernetes.io/name: {{ include "everynode.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The standard labels of every object (and of the pods). */}}
{{- define "everynode.labels" -}}
helm.sh/chart: {{ include "everynode.chart" . }}
{{ include "everynode.selectorLabels" . }}
app.kubernetes.io/version: {{ include "everynode.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: everynode
{{- end -}}

{{/* The metrics Service: <fullname>-metrics, the fullname cut so that it stays within 63 characters. */}}
{{- define "everynode.metricsServiceName" -}}
{{- printf "%s-metrics" (include "everynode.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}
