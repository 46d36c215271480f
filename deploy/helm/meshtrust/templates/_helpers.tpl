{{/*
The name of every namespaced object, of the ClusterRole(Binding) and of the leader Lease. It
is fixed: the controller reconciles every MeshTrust of the cluster, so one release per cluster.
*/}}
{{- define "meshtrust.name" -}}
meshtrust-controller
{{- end }}

{{/* The labels that select the controller's pods (as in deploy/deployment.yaml). */}}
{{- define "meshtrust.selectorLabels" -}}
app.kubernetes.io/name: meshtrust
app.kubernetes.io/component: controller
{{- end }}

{{/* Labels of every object: those of deploy/, and Helm's own. */}}
{{- define "meshtrust.labels" -}}
{{ include "meshtrust.selectorLabels" . }}
app.kubernetes.io/part-of: meshtrust
{{ include "meshtrust.helmLabels" . }}
{{- end }}

{{/* The labels Helm's conventions add, which the objects of deploy/ do not carry. */}}
{{- define "meshtrust.helmLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The controller image: repository:tag (the chart's appVersion by default), or @digest. */}}
{{- define "meshtrust.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* The subject of every binding: the controller's ServiceAccount. */}}
{{- define "meshtrust.subjects" -}}
subjects:
  - kind: ServiceAccount
    name: {{ include "meshtrust.name" . }}
    namespace: {{ .Release.Namespace }}
{{- end }}
