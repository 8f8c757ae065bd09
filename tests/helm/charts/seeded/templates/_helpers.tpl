{{/* Labels every object carries. */}}
{{- define "seeded.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Pod-level settings; one of them is misspelt. */}}
{{- define "seeded.podSettings" -}}
enableServiceLinks: false
terminationGracePeriod: 30
{{- end }}
