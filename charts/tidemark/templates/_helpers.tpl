{{/* Chart name. */}}
{{- define "tidemark.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name used as the prefix of every resource name. */}}
{{- define "tidemark.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tidemark.api.fullname" -}}
{{- printf "%s-api" (include "tidemark.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tidemark.controller.fullname" -}}
{{- printf "%s-controller" (include "tidemark.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "tidemark.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "tidemark.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tidemark
{{- end }}

{{/* Selector labels; call with (dict "ctx" $ "component" "api"). */}}
{{- define "tidemark.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tidemark.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of a component's resources; call with (dict "ctx" $ "component" "api"). */}}
{{- define "tidemark.componentLabels" -}}
{{ include "tidemark.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tidemark.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (include "tidemark.api.fullname" .) .Values.api.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tidemark.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "tidemark.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Container image reference. */}}
{{- define "tidemark.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the database URL. */}}
{{- define "tidemark.database.secretName" -}}
{{- default (printf "%s-database" (include "tidemark.fullname" .)) .Values.database.existingSecret }}
{{- end }}

{{/* The TIDEMARK_DATABASE_URL env entry, read from the database Secret. */}}
{{- define "tidemark.database.env" -}}
- name: TIDEMARK_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "tidemark.database.secretName" . }}
      key: {{ .Values.database.secretKey | default "url" }}
{{- end }}

{{/*
Pod annotation that rolls the pods when the chart-managed database Secret
changes (nothing to hash for an existing Secret).
*/}}
{{- define "tidemark.database.checksum" -}}
{{- if and (not .Values.database.existingSecret) .Values.database.url }}
checksum/database: {{ .Values.database.url | sha256sum }}
{{- end }}
{{- end }}

{{/* The same for the chart-managed read replica Secret (API pods only). */}}
{{- define "tidemark.readReplicas.checksum" -}}
{{- if and (not .Values.database.readReplicas.existingSecret) .Values.database.readReplicas.urls }}
checksum/read-database: {{ join "," .Values.database.readReplicas.urls | sha256sum }}
{{- end }}
{{- end }}

{{/* Whether the API reads from replicas. */}}
{{- define "tidemark.readReplicas.enabled" -}}
{{- if or .Values.database.readReplicas.existingSecret .Values.database.readReplicas.urls }}true{{ end }}
{{- end }}

{{/* Name of the Secret holding the read replica URLs. */}}
{{- define "tidemark.readReplicas.secretName" -}}
{{- default (printf "%s-read-database" (include "tidemark.fullname" .)) .Values.database.readReplicas.existingSecret }}
{{- end }}

{{/* The TIDEMARK_READ_DATABASE_URLS env entry, read from its Secret. */}}
{{- define "tidemark.readReplicas.env" -}}
- name: TIDEMARK_READ_DATABASE_URLS
  valueFrom:
    secretKeyRef:
      name: {{ include "tidemark.readReplicas.secretName" . }}
      key: {{ .Values.database.readReplicas.secretKey | default "urls" }}
{{- end }}

{{/* --history-retention, when history is not kept forever. */}}
{{- define "tidemark.history.args" -}}
{{- $keep := toString .Values.history.retention }}
{{- if not (regexMatch "^(0|[0-9]+d|([0-9]+(\\.[0-9]+)?(h|m|s|ms))+)$" $keep) }}
{{- fail (printf "history.retention %q: give days (400d), a duration (9600h), or \"0\" to keep everything" $keep) }}
{{- end }}
{{- if ne $keep "0" }}
- --history-retention={{ $keep }}
{{- end }}
{{- end }}

{{/* Writable /tmp, the only writable path (the root filesystem is read-only). */}}
{{- define "tidemark.tmpVolume" -}}
- name: tmp
  {{- if .Values.tmpSizeLimit }}
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end }}
