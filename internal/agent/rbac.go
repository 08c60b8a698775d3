package agent

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

// PolicyRules are exactly the permissions the agent needs: to read (get,
// list, watch) the kinds it watches, and to get the kube-system namespace
// whose uid is the default host name. The Helm chart grants these and
// nothing else; a test checks that the two agree.
func PolicyRules() []rbacv1.PolicyRule {
	byGroup := map[string][]string{}
	var groups []string
	for _, k := range Kinds {
		if byGroup[k.Group] == nil {
			groups = append(groups, k.Group)
		}
		byGroup[k.Group] = append(byGroup[k.Group], k.Resource)
	}
	rules := make([]rbacv1.PolicyRule, 0, len(groups)+1)
	for _, g := range groups {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: byGroup[g], Verbs: []string{"get", "list", "watch"}})
	}
	rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"namespaces"},
		ResourceNames: []string{"kube-system"}, Verbs: []string{"get"}})
	return rules
}
