//! `aliyun`: Alibaba Cloud Container Registry — Personal Edition
//! (`registry[-vpc|-intl].REGION.aliyuncs.com`) and Enterprise Edition
//! (`INSTANCE-registry[-vpc].REGION.cr.aliyuncs.com`) with the account's
//! fixed registry password.

crowsnest_plugin_sdk::domain_registry!(
    Aliyun,
    "aliyun",
    "Alibaba Cloud Container Registry (registry*.REGION.aliyuncs.com, *.cr.aliyuncs.com)",
    [
        "registry.*.aliyuncs.com",
        "registry-vpc.*.aliyuncs.com",
        "registry-intl.*.aliyuncs.com",
        "*.cr.aliyuncs.com",
    ],
    "Alibaba Cloud account or RAM user name",
    "The fixed registry password set in the console",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::registry::{configure_from, image_ref as image, RegistryProvider};

    #[test]
    fn personal_and_enterprise_domains() {
        let aliyun: Aliyun =
            configure_from([("username", "me@example"), ("password", "p")]).unwrap();
        for domain in [
            "registry.cn-hangzhou.aliyuncs.com",
            "registry-vpc.cn-shanghai.aliyuncs.com",
            "registry-intl.ap-southeast-1.aliyuncs.com",
            "acme-registry.cn-beijing.cr.aliyuncs.com",
        ] {
            assert_eq!(
                aliyun.matches(&image(domain, "ns/app")),
                Some(100),
                "{domain}"
            );
        }
        for domain in [
            "registry.example.com",
            "mirror.aliyuncs.com",
            "cr.aliyuncs.com",
        ] {
            assert_eq!(aliyun.matches(&image(domain, "ns/app")), None, "{domain}");
        }
    }
}
